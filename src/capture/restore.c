/*
 * iptables-restore rendering; see restore.h. Only tables with rules are written, so a plan
 * without TPROXY or DNS never touches mangle or raw.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "capture/restore.h"
#include "common/strbuf.h"
#include "common/strv.h"

const char *const restore_tables[] = { "filter", "mangle", "nat", "raw", NULL };

static void declare(struct strv *declared, const struct strv *exists, struct strbuf *out,
                    const char *chain, size_t len)
{
        char name[64];

        if (len >= sizeof(name))
                return;
        memcpy(name, chain, len);
        name[len] = '\0';
        if (plan_chain_is_builtin(name) || strv_contains(declared, name))
                return;
        strv_push(declared, name);
        if (!exists || !strv_contains(exists, name))
                strbuf_printf(out, "-N %s\n", name);
}

bool restore_plan_has_table(const struct plan *p, enum plan_family fam, const char *table)
{
        const struct plan_rules *rs = &p->family[fam];

        for (size_t i = 0; i < rs->n; i++)
                if (strcmp(rs->v[i].table, table) == 0)
                        return true;
        return false;
}

int restore_render_table_body(const struct plan *p, enum plan_family fam, const char *table,
                              const struct strv *exists, struct strbuf *out)
{
        const struct plan_rules *rs = &p->family[fam];
        struct strv declared = STRV_NULL;

        /* Chains in order of first use as a rule's chain, then jump targets not yet declared. */
        for (size_t i = 0; i < rs->n; i++)
                if (strcmp(rs->v[i].table, table) == 0)
                        declare(&declared, exists, out, rs->v[i].chain, strlen(rs->v[i].chain));
        for (size_t i = 0; i < rs->n; i++) {
                const char *target;
                size_t len;

                if (strcmp(rs->v[i].table, table) == 0 && (target = plan_rule_jump_target(rs->v[i].spec, &len)))
                        declare(&declared, exists, out, target, len);
        }
        for (size_t i = 0; i < rs->n; i++) {
                const struct plan_rule *r = &rs->v[i];
                if (strcmp(r->table, table) != 0)
                        continue;
                if (r->position > 0)
                        strbuf_printf(out, "-I %s %d %s\n", r->chain, r->position, r->spec);
                else
                        strbuf_printf(out, "-A %s %s\n", r->chain, r->spec);
        }
        strv_deinit(&declared);
        return out->error;
}

int restore_render(const struct plan *p, enum plan_family fam, struct strbuf *out)
{
        for (const char *const *t = restore_tables; *t; t++) {
                if (!restore_plan_has_table(p, fam, *t))
                        continue;
                strbuf_printf(out, "* %s\n", *t);
                restore_render_table_body(p, fam, *t, NULL, out);
                strbuf_puts(out, "COMMIT\n");
        }
        return out->error;
}
