/*
 * Rule canonicalisation; see canon.h. The spec is split into tokens and read the way
 * iptables' option parser reads it: base options (-s -d -i -o -p) go to fixed slots, "-m X"
 * opens a match, an option belongs to the newest open match that defines it (so two
 * "-m owner" matches each get their own --gid-owner), and a port option that no open match
 * defines loads the protocol's implicit match at that point, as iptables' load_proto() does.
 * Every option value is normalised when it is read, so printing is a fixed walk: base slots,
 * matches in order with their options in each extension's save order, then the target.
 * Where a format comes from, it is the extension's save function in iptables 1.8.9
 * (extensions/libxt_*.c), checked against the conformance corpus.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "capture/canon.h"
#include "common/cidr.h"
#include "common/strbuf.h"

#define CANON_MAX_SPEC 4096
#define CANON_MAX_TOKENS 128
#define CANON_MAX_MATCHES 16
#define CANON_MAX_SLOTS 4
#define CANON_VAL_MAX 192
#define CANON_CHAIN_MAX 28      /* XT_EXTENSION_MAXNAMELEN - 1 */
#define CANON_MULTI_PORTS 15    /* XT_MULTI_PORTS */

enum canon_proto {
        CANON_PROTO_NONE = 0,
        CANON_PROTO_TCP,
        CANON_PROTO_UDP,
};

/* One option of a match: how it is written and where and how it is printed. */
struct canon_opt {
        const char *name;       /* as accepted, e.g. "--destination-port" */
        const char *save_name;  /* as iptables-save prints it, e.g. "--dport" */
        unsigned slot;          /* position in the match's save order */
        bool invertible;
        /* Normalises the argument into buf; NULL for an option without argument. */
        int (*parse)(const char *arg, char *buf, size_t len);
};

struct canon_matchdef {
        const char *name;
        const struct canon_opt *opts;
        size_t n_opts;
        bool needs_option;      /* iptables refuses the match without any option */
        bool needs_port_proto;  /* only with a non-negated -p tcp/udp */
        enum canon_proto proto; /* the implicit match of this protocol */
};

struct canon_slot {
        bool set;
        bool inv;
        const char *save_name;
        char val[CANON_VAL_MAX];
};

struct canon_match {
        const struct canon_matchdef *def;
        struct canon_slot slot[CANON_MAX_SLOTS];
};

enum canon_base {
        CANON_BASE_SRC = 0,
        CANON_BASE_DST,
        CANON_BASE_IN,
        CANON_BASE_OUT,
        CANON_BASE_PROTO,
        _CANON_BASE_MAX,
};

/* The base options in save order: -s, -d, -i, -o, -p. */
static const struct {
        const char *short_name;
        const char *long_name;
} canon_base_names[_CANON_BASE_MAX] = {
        [CANON_BASE_SRC] = { "-s", "--source" },
        [CANON_BASE_DST] = { "-d", "--destination" },
        [CANON_BASE_IN] = { "-i", "--in-interface" },
        [CANON_BASE_OUT] = { "-o", "--out-interface" },
        [CANON_BASE_PROTO] = { "-p", "--protocol" },
};

struct canon_base_slot {
        bool given;     /* written in the spec */
        bool set;       /* printed (an unnegated /0 address is not) */
        bool inv;
        char val[64];
};

struct canon_parts {
        int family;
        struct canon_base_slot base[_CANON_BASE_MAX];
        enum canon_proto proto;
        struct canon_match match[CANON_MAX_MATCHES];
        size_t n_matches;
        struct strbuf target;   /* "-j NAME ..." in canonical form, empty without -j */
};

/* ---- numbers ---- */

/* Reads an unsigned number the way strtoul(base 0) does, but whole-string and unsigned only. */
static int parse_u32(const char *s, size_t len, uint32_t max, uint32_t *ret)
{
        unsigned base = 10;
        uint64_t v = 0;
        size_t i = 0;

        if (len == 0)
                return -EINVAL;
        if (len > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
                base = 16;
                i = 2;
        } else if (len > 1 && s[0] == '0') {
                base = 8;
                i = 1;
        }
        for (; i < len; i++) {
                unsigned d;

                if (s[i] >= '0' && s[i] <= '9')
                        d = (unsigned)(s[i] - '0');
                else if (s[i] >= 'a' && s[i] <= 'f')
                        d = (unsigned)(s[i] - 'a') + 10;
                else if (s[i] >= 'A' && s[i] <= 'F')
                        d = (unsigned)(s[i] - 'A') + 10;
                else
                        return -EINVAL;
                if (d >= base)
                        return -EINVAL;
                v = v * base + d;
                if (v > max)
                        return -EINVAL;
        }
        *ret = (uint32_t)v;
        return 0;
}

static int parse_u32_str(const char *s, uint32_t max, uint32_t *ret)
{
        return parse_u32(s, strlen(s), max, ret);
}

/* "V" or "V/M"; a missing mask is 0xffffffff (XTTYPE_MARKMASK32). */
static int parse_markmask(const char *s, uint32_t *ret_mark, uint32_t *ret_mask)
{
        const char *slash = strchr(s, '/');

        if (!slash) {
                *ret_mask = UINT32_MAX;
                return parse_u32_str(s, UINT32_MAX, ret_mark);
        }
        if (parse_u32(s, (size_t)(slash - s), UINT32_MAX, ret_mark) < 0)
                return -EINVAL;
        return parse_u32_str(slash + 1, UINT32_MAX, ret_mask);
}

/* "LO<sep>HI" or "N"; HI >= LO. */
static int parse_range(const char *s, char sep, uint32_t max, uint32_t *ret_lo, uint32_t *ret_hi)
{
        const char *mid = strchr(s, sep);

        if (!mid) {
                if (parse_u32_str(s, max, ret_lo) < 0)
                        return -EINVAL;
                *ret_hi = *ret_lo;
                return 0;
        }
        if (parse_u32(s, (size_t)(mid - s), max, ret_lo) < 0 ||
            parse_u32_str(mid + 1, max, ret_hi) < 0 || *ret_hi < *ret_lo)
                return -EINVAL;
        return 0;
}

/* ---- match option values ---- */

/* libxt_tcp/udp: "N" or "LO:HI"; 0:65535 is printed as nothing at all, so it is refused. */
static int parse_tcp_port(const char *arg, char *buf, size_t len)
{
        uint32_t lo, hi;

        if (parse_range(arg, ':', UINT16_MAX, &lo, &hi) < 0 || (lo == 0 && hi == UINT16_MAX))
                return -EINVAL;
        if (lo == hi)
                snprintf(buf, len, "%u", lo);
        else
                snprintf(buf, len, "%u:%u", lo, hi);
        return 0;
}

/* libxt_multiport v1: up to 15 ports, a range "LO:HI" (LO < HI) taking two. */
static int parse_port_list(const char *arg, char *buf, size_t len)
{
        struct strbuf b = STRBUF_NULL;
        unsigned used = 0;
        const char *p = arg;
        int r = -EINVAL;

        for (;;) {
                const char *comma = strchr(p, ',');
                size_t n = comma ? (size_t)(comma - p) : strlen(p);
                const char *colon = memchr(p, ':', n);
                uint32_t lo, hi;

                if (colon) {
                        if (parse_u32(p, (size_t)(colon - p), UINT16_MAX, &lo) < 0 ||
                            parse_u32(colon + 1, n - (size_t)(colon - p) - 1, UINT16_MAX, &hi) < 0 ||
                            lo >= hi)
                                goto out;
                        used += 2;
                        strbuf_printf(&b, "%s%u:%u", b.len ? "," : "", lo, hi);
                } else {
                        if (parse_u32(p, n, UINT16_MAX, &lo) < 0)
                                goto out;
                        used++;
                        strbuf_printf(&b, "%s%u", b.len ? "," : "", lo);
                }
                if (used > CANON_MULTI_PORTS)
                        goto out;
                if (!comma)
                        break;
                p = comma + 1;
        }
        if (b.error) {
                r = b.error;
                goto out;
        }
        if (b.len >= len)
                goto out;
        memcpy(buf, b.s, b.len + 1);
        r = 0;
out:
        strbuf_deinit(&b);
        return r;
}

/* libxt_owner: a numeric ID or "LO-HI" (also "LO:HI"), at most UINT32_MAX - 1. */
static int parse_owner_id(const char *arg, char *buf, size_t len)
{
        uint32_t lo, hi;
        char sep = strchr(arg, ':') ? ':' : '-';

        if (parse_range(arg, sep, UINT32_MAX - 1, &lo, &hi) < 0)
                return -EINVAL;
        if (lo == hi)
                snprintf(buf, len, "%u", lo);
        else
                snprintf(buf, len, "%u-%u", lo, hi);
        return 0;
}

/* libxt_mark/libxt_connmark: "0x%x", with "/0x%x" unless the mask is all ones. */
static int parse_mark(const char *arg, char *buf, size_t len)
{
        uint32_t mark, mask;

        if (parse_markmask(arg, &mark, &mask) < 0)
                return -EINVAL;
        if (mask == UINT32_MAX)
                snprintf(buf, len, "0x%x", mark);
        else
                snprintf(buf, len, "0x%x/0x%x", mark, mask);
        return 0;
}

/* libxt_conntrack print_state(): the states in this fixed order, whatever the input order. */
static const char *const canon_ctstates[] = {
        "INVALID", "NEW", "RELATED", "ESTABLISHED", "UNTRACKED", "SNAT", "DNAT",
};

static int parse_ctstate(const char *arg, char *buf, size_t len)
{
        unsigned mask = 0;
        const char *p = arg;
        size_t off = 0;

        for (;;) {
                const char *comma = strchr(p, ',');
                size_t n = comma ? (size_t)(comma - p) : strlen(p);
                size_t i;

                for (i = 0; i < sizeof(canon_ctstates) / sizeof(canon_ctstates[0]); i++)
                        if (strlen(canon_ctstates[i]) == n && strncasecmp(p, canon_ctstates[i], n) == 0)
                                break;
                if (i == sizeof(canon_ctstates) / sizeof(canon_ctstates[0]))
                        return -EINVAL;
                mask |= 1u << i;
                if (!comma)
                        break;
                p = comma + 1;
        }
        buf[0] = '\0';
        for (size_t i = 0; i < sizeof(canon_ctstates) / sizeof(canon_ctstates[0]); i++) {
                if (!(mask & (1u << i)))
                        continue;
                off += (size_t)snprintf(buf + off, len - off, "%s%s", off ? "," : "", canon_ctstates[i]);
        }
        return 0;
}

/* ---- match table ---- */

static const struct canon_opt canon_tcp_opts[] = {
        { "--sport", "--sport", 0, true, parse_tcp_port },
        { "--source-port", "--sport", 0, true, parse_tcp_port },
        { "--dport", "--dport", 1, true, parse_tcp_port },
        { "--destination-port", "--dport", 1, true, parse_tcp_port },
};

static const struct canon_opt canon_multiport_opts[] = {
        /* One slot: iptables accepts only one of the three. */
        { "--sports", "--sports", 0, true, parse_port_list },
        { "--source-ports", "--sports", 0, true, parse_port_list },
        { "--dports", "--dports", 0, true, parse_port_list },
        { "--destination-ports", "--dports", 0, true, parse_port_list },
        { "--ports", "--ports", 0, true, parse_port_list },
};

static const struct canon_opt canon_owner_opts[] = {
        { "--socket-exists", "--socket-exists", 0, true, NULL },
        { "--uid-owner", "--uid-owner", 1, true, parse_owner_id },
        { "--gid-owner", "--gid-owner", 2, true, parse_owner_id },
};

static const struct canon_opt canon_mark_opts[] = {
        { "--mark", "--mark", 0, true, parse_mark },
};

static const struct canon_opt canon_conntrack_opts[] = {
        { "--ctstate", "--ctstate", 0, true, parse_ctstate },
};

#define CANON_OPTS(a) (a), (sizeof(a) / sizeof((a)[0]))

static const struct canon_matchdef canon_matchdefs[] = {
        { "tcp", CANON_OPTS(canon_tcp_opts), false, false, CANON_PROTO_TCP },
        { "udp", CANON_OPTS(canon_tcp_opts), false, false, CANON_PROTO_UDP },
        { "multiport", CANON_OPTS(canon_multiport_opts), true, true, CANON_PROTO_NONE },
        { "owner", CANON_OPTS(canon_owner_opts), true, false, CANON_PROTO_NONE },
        { "mark", CANON_OPTS(canon_mark_opts), true, false, CANON_PROTO_NONE },
        { "connmark", CANON_OPTS(canon_mark_opts), true, false, CANON_PROTO_NONE },
        { "conntrack", CANON_OPTS(canon_conntrack_opts), true, false, CANON_PROTO_NONE },
};

#define CANON_N_MATCHDEFS (sizeof(canon_matchdefs) / sizeof(canon_matchdefs[0]))

static const struct canon_matchdef *matchdef_find(const char *name)
{
        for (size_t i = 0; i < CANON_N_MATCHDEFS; i++)
                if (strcmp(canon_matchdefs[i].name, name) == 0)
                        return &canon_matchdefs[i];
        return NULL;
}

static const struct canon_matchdef *matchdef_of_proto(enum canon_proto proto)
{
        for (size_t i = 0; i < CANON_N_MATCHDEFS; i++)
                if (canon_matchdefs[i].proto == proto && proto != CANON_PROTO_NONE)
                        return &canon_matchdefs[i];
        return NULL;
}

static const struct canon_opt *matchdef_opt(const struct canon_matchdef *def, const char *name)
{
        for (size_t i = 0; i < def->n_opts; i++)
                if (strcmp(def->opts[i].name, name) == 0)
                        return &def->opts[i];
        return NULL;
}

/* ---- base options ---- */

/* ADDR or ADDR/LEN of the rule's family; host bits are cleared, as the kernel stores them. */
static int parse_address(const char *arg, bool inv, int family, struct canon_base_slot *ret)
{
        struct cidr c;
        unsigned char *bytes;
        size_t n_bytes;

        if (strchr(arg, '/')) {
                if (cidr_parse(arg, &c) < 0)
                        return -EINVAL;
        } else if (ip_parse(arg, &c) < 0) {
                return -EINVAL;
        }
        if (c.family != family)
                return -EINVAL;
        bytes = family == AF_INET ? (unsigned char *)&c.addr.v4 : (unsigned char *)&c.addr.v6;
        n_bytes = family == AF_INET ? 4 : 16;
        for (size_t i = 0; i < n_bytes; i++) {
                unsigned keep = c.prefix_len > i * 8 ? c.prefix_len - (unsigned)i * 8 : 0;

                if (keep < 8)
                        bytes[i] &= (unsigned char)(0xff00u >> keep);
        }
        cidr_format_iptables(&c, ret->val, sizeof(ret->val));
        /* iptables-save leaves out an unnegated "anywhere". */
        ret->set = inv || c.prefix_len > 0;
        return 0;
}

/* An interface name as iptables takes it: up to IFNAMSIZ - 1 bytes, "+" wildcard allowed. */
static int parse_interface(const char *arg, struct canon_base_slot *ret)
{
        size_t n = strlen(arg);

        if (n == 0 || n > 15 || arg[0] == '!')
                return -EINVAL;
        for (size_t i = 0; i < n; i++)
                if (arg[i] == '/' || (unsigned char)arg[i] <= ' ' || (unsigned char)arg[i] >= 0x7f)
                        return -EINVAL;
        memcpy(ret->val, arg, n + 1);
        ret->set = true;
        return 0;
}

static int parse_base(struct canon_parts *parts, enum canon_base which, bool inv, const char *arg)
{
        struct canon_base_slot *slot = &parts->base[which];

        if (slot->given)
                return -EINVAL;
        slot->given = true;
        slot->inv = inv;
        switch (which) {
        case CANON_BASE_SRC:
        case CANON_BASE_DST:
                return parse_address(arg, inv, parts->family, slot);
        case CANON_BASE_IN:
        case CANON_BASE_OUT:
                return parse_interface(arg, slot);
        case CANON_BASE_PROTO:
                if (strcmp(arg, "tcp") == 0)
                        parts->proto = CANON_PROTO_TCP;
                else if (strcmp(arg, "udp") == 0)
                        parts->proto = CANON_PROTO_UDP;
                else
                        return -EINVAL;
                snprintf(slot->val, sizeof(slot->val), "%s", arg);
                slot->set = true;
                return 0;
        default:
                return -EINVAL;
        }
}

/* The protocol named by a non-negated -p, or NONE. */
static enum canon_proto port_proto(const struct canon_parts *parts)
{
        return parts->base[CANON_BASE_PROTO].inv ? CANON_PROTO_NONE : parts->proto;
}

/* ---- match options ---- */

static struct canon_match *add_match(struct canon_parts *parts, const struct canon_matchdef *def)
{
        struct canon_match *m;

        if (parts->n_matches >= CANON_MAX_MATCHES)
                return NULL;
        m = &parts->match[parts->n_matches++];
        memset(m, 0, sizeof(*m));
        m->def = def;
        return m;
}

/*
 * Finds where option `name` goes: the newest match that defines it, else a new implicit
 * tcp/udp match when -p names that protocol and it is not loaded yet.
 */
static int route_option(struct canon_parts *parts, const char *name,
                        struct canon_match **ret_match, const struct canon_opt **ret_opt)
{
        const struct canon_matchdef *def;
        const struct canon_opt *opt;

        for (size_t i = parts->n_matches; i > 0; i--) {
                opt = matchdef_opt(parts->match[i - 1].def, name);
                if (opt) {
                        *ret_match = &parts->match[i - 1];
                        *ret_opt = opt;
                        return 0;
                }
        }
        def = matchdef_of_proto(port_proto(parts));
        if (!def)
                return -EINVAL;
        for (size_t i = 0; i < parts->n_matches; i++)
                if (parts->match[i].def == def)
                        return -EINVAL;
        opt = matchdef_opt(def, name);
        if (!opt)
                return -EINVAL;
        *ret_match = add_match(parts, def);
        if (!*ret_match)
                return -EINVAL;
        *ret_opt = opt;
        return 0;
}

/* ---- targets ---- */

struct canon_targetdef {
        const char *name;
        /* Reads the target's options tok[0..n) and appends their canonical text to out. */
        int (*parse)(const struct canon_parts *parts, char *const *tok, size_t n, struct strbuf *out);
};

/* Sets bit `bit` of *seen, refusing a repeat. */
static int once(unsigned *seen, unsigned bit)
{
        if (*seen & (1u << bit))
                return -EINVAL;
        *seen |= 1u << bit;
        return 0;
}

/* libxt_REDIRECT: " --to-ports N[-M]" then " --random". */
static int target_redirect(const struct canon_parts *parts, char *const *tok, size_t n, struct strbuf *out)
{
        uint32_t lo = 0, hi = 0;
        unsigned seen = 0;

        for (size_t i = 0; i < n; i++) {
                if (strcmp(tok[i], "--to-ports") == 0 || strcmp(tok[i], "--to-port") == 0) {
                        if (once(&seen, 0) < 0 || i + 1 >= n ||
                            parse_range(tok[++i], '-', UINT16_MAX, &lo, &hi) < 0)
                                return -EINVAL;
                } else if (strcmp(tok[i], "--random") == 0) {
                        if (once(&seen, 1) < 0)
                                return -EINVAL;
                } else {
                        return -EINVAL;
                }
        }
        if (seen & 1u) {
                /* "Need TCP, UDP, SCTP or DCCP with port specification" */
                if (port_proto(parts) == CANON_PROTO_NONE)
                        return -EINVAL;
                if (lo == hi)
                        strbuf_printf(out, " --to-ports %u", lo);
                else
                        strbuf_printf(out, " --to-ports %u-%u", lo, hi);
        }
        if (seen & 2u)
                strbuf_puts(out, " --random");
        return 0;
}

/*
 * The mark operations shared by MARK and CONNMARK (libxt_MARK mark_tg_parse,
 * libxt_CONNMARK connmark_tg_parse), all saved as --set-xmark VALUE/MASK. Returns 1 when tok
 * is one of them (consuming its argument), 0 when it is not, -EINVAL on a bad value.
 */
static int parse_mark_op(char *const *tok, size_t n, size_t *i, uint32_t *ret_mark, uint32_t *ret_mask)
{
        const char *op = tok[*i];
        uint32_t v, m;

        if (strcmp(op, "--set-xmark") != 0 && strcmp(op, "--set-mark") != 0 &&
            strcmp(op, "--and-mark") != 0 && strcmp(op, "--or-mark") != 0 &&
            strcmp(op, "--xor-mark") != 0)
                return 0;
        if (*i + 1 >= n)
                return -EINVAL;
        (*i)++;
        if (strcmp(op, "--set-xmark") == 0 || strcmp(op, "--set-mark") == 0) {
                if (parse_markmask(tok[*i], &v, &m) < 0)
                        return -EINVAL;
                *ret_mark = v;
                /* --set-mark V/M clears M and sets V: XOR mask is V | M. */
                *ret_mask = strcmp(op, "--set-mark") == 0 ? (v | m) : m;
                return 1;
        }
        if (parse_u32_str(tok[*i], UINT32_MAX, &v) < 0)
                return -EINVAL;
        if (strcmp(op, "--and-mark") == 0) {
                *ret_mark = 0;
                *ret_mask = ~v;
        } else if (strcmp(op, "--or-mark") == 0) {
                *ret_mark = v;
                *ret_mask = v;
        } else {
                *ret_mark = v;
                *ret_mask = 0;
        }
        return 1;
}

/* libxt_MARK (revision 2): always " --set-xmark 0x%x/0x%x". */
static int target_mark(const struct canon_parts *parts, char *const *tok, size_t n, struct strbuf *out)
{
        uint32_t mark = 0, mask = 0;
        unsigned seen = 0;

        for (size_t i = 0; i < n; i++) {
                int r = parse_mark_op(tok, n, &i, &mark, &mask);

                if (r <= 0 || once(&seen, 0) < 0)
                        return -EINVAL;
        }
        if (!seen)
                return -EINVAL;
        strbuf_printf(out, " --set-xmark 0x%x/0x%x", mark, mask);
        return 0;
}

/*
 * libxt_CONNMARK (revision 1): a set operation saves as --set-xmark; --save-mark and
 * --restore-mark always print both masks, all ones by default.
 */
static int target_connmark(const struct canon_parts *parts, char *const *tok, size_t n, struct strbuf *out)
{
        enum { OP = 0, NFMASK, CTMASK, MASK };
        enum { SET = 0, SAVE, RESTORE } mode = SET;
        uint32_t mark = 0, mask = 0, nfmask = UINT32_MAX, ctmask = UINT32_MAX;
        unsigned seen = 0;

        for (size_t i = 0; i < n; i++) {
                int r = parse_mark_op(tok, n, &i, &mark, &mask);

                if (r < 0)
                        return r;
                if (r > 0) {
                        if (once(&seen, OP) < 0)
                                return -EINVAL;
                        mode = SET;
                } else if (strcmp(tok[i], "--save-mark") == 0 || strcmp(tok[i], "--restore-mark") == 0) {
                        if (once(&seen, OP) < 0)
                                return -EINVAL;
                        mode = strcmp(tok[i], "--save-mark") == 0 ? SAVE : RESTORE;
                } else if (strcmp(tok[i], "--nfmask") == 0 || strcmp(tok[i], "--ctmask") == 0 ||
                           strcmp(tok[i], "--mask") == 0) {
                        unsigned bit = tok[i][2] == 'n' ? NFMASK : tok[i][2] == 'c' ? CTMASK : MASK;
                        uint32_t v;

                        if (once(&seen, bit) < 0 || i + 1 >= n ||
                            parse_u32_str(tok[++i], UINT32_MAX, &v) < 0)
                                return -EINVAL;
                        if (bit == NFMASK || bit == MASK)
                                nfmask = v;
                        if (bit == CTMASK || bit == MASK)
                                ctmask = v;
                } else {
                        return -EINVAL;
                }
        }
        if (!(seen & (1u << OP)))
                return -EINVAL;
        /* --mask excludes --nfmask/--ctmask; masks only qualify save and restore. */
        if ((seen & (1u << MASK)) && (seen & ((1u << NFMASK) | (1u << CTMASK))))
                return -EINVAL;
        if (mode == SET) {
                if (seen & ((1u << NFMASK) | (1u << CTMASK) | (1u << MASK)))
                        return -EINVAL;
                strbuf_printf(out, " --set-xmark 0x%x/0x%x", mark, mask);
        } else {
                strbuf_printf(out, " %s --nfmask 0x%x --ctmask 0x%x",
                              mode == SAVE ? "--save-mark" : "--restore-mark", nfmask, ctmask);
        }
        return 0;
}

/*
 * libxt_TPROXY (revision 1): " --on-port P --on-ip A --tproxy-mark 0x%x/0x%x", the address
 * defaulting to the unspecified one and the mark to 0/0. The kernel accepts it only with a
 * non-negated -p tcp or udp.
 */
static int target_tproxy(const struct canon_parts *parts, char *const *tok, size_t n, struct strbuf *out)
{
        uint32_t port = 0, mark = 0, mask = 0;
        char ip[64];
        unsigned seen = 0;

        snprintf(ip, sizeof(ip), "%s", parts->family == AF_INET ? "0.0.0.0" : "::");
        for (size_t i = 0; i < n; i++) {
                if (i + 1 >= n)
                        return -EINVAL;
                if (strcmp(tok[i], "--on-port") == 0) {
                        if (once(&seen, 0) < 0 || parse_u32_str(tok[++i], UINT16_MAX, &port) < 0)
                                return -EINVAL;
                } else if (strcmp(tok[i], "--on-ip") == 0) {
                        struct cidr c;

                        if (once(&seen, 1) < 0 || ip_parse(tok[++i], &c) < 0 || c.family != parts->family)
                                return -EINVAL;
                        ip_format_iptables(&c, ip, sizeof(ip));
                } else if (strcmp(tok[i], "--tproxy-mark") == 0) {
                        if (once(&seen, 2) < 0 || parse_markmask(tok[++i], &mark, &mask) < 0)
                                return -EINVAL;
                } else {
                        return -EINVAL;
                }
        }
        if (!(seen & 1u) || port_proto(parts) == CANON_PROTO_NONE)
                return -EINVAL;
        strbuf_printf(out, " --on-port %u --on-ip %s --tproxy-mark 0x%x/0x%x", port, ip, mark, mask);
        return 0;
}

/* libxt_CT: " --notrack", then " --zone N" unless the zone is 0. */
static int target_ct(const struct canon_parts *parts, char *const *tok, size_t n, struct strbuf *out)
{
        uint32_t zone = 0;
        unsigned seen = 0;

        for (size_t i = 0; i < n; i++) {
                if (strcmp(tok[i], "--notrack") == 0) {
                        if (once(&seen, 0) < 0)
                                return -EINVAL;
                } else if (strcmp(tok[i], "--zone") == 0) {
                        if (once(&seen, 1) < 0 || i + 1 >= n ||
                            parse_u32_str(tok[++i], UINT16_MAX, &zone) < 0)
                                return -EINVAL;
                } else {
                        return -EINVAL;
                }
        }
        if (seen & 1u)
                strbuf_puts(out, " --notrack");
        if (zone)
                strbuf_printf(out, " --zone %u", zone);
        return 0;
}

static const struct canon_targetdef canon_targetdefs[] = {
        { "REDIRECT", target_redirect },
        { "MARK", target_mark },
        { "CONNMARK", target_connmark },
        { "TPROXY", target_tproxy },
        { "CT", target_ct },
};

/*
 * Target extensions pilotfish does not emit. Without this list "-j LOG" would pass as a jump
 * to a user chain called LOG, and its save text (with defaults) would not match.
 */
static const char *const canon_other_targets[] = {
        "AUDIT", "CHECKSUM", "CLASSIFY", "CLUSTERIP", "CONNSECMARK", "DNAT", "DNPT", "DSCP",
        "ECN", "HL", "HMARK", "IDLETIMER", "LED", "LOG", "MASQUERADE", "NETMAP", "NFLOG",
        "NFQUEUE", "NOTRACK", "QUEUE", "RATEEST", "REJECT", "SECMARK", "SET", "SNAT", "SNPT",
        "SYNPROXY", "TCPMSS", "TCPOPTSTRIP", "TEE", "TOS", "TRACE", "TTL", "ULOG",
};

static bool chain_name_ok(const char *name)
{
        size_t n = strlen(name);

        if (n == 0 || n > CANON_CHAIN_MAX || name[0] == '-' || name[0] == '!')
                return false;
        for (size_t i = 0; i < n; i++)
                if ((unsigned char)name[i] <= ' ' || (unsigned char)name[i] >= 0x7f)
                        return false;
        for (size_t i = 0; i < sizeof(canon_other_targets) / sizeof(canon_other_targets[0]); i++)
                if (strcmp(name, canon_other_targets[i]) == 0)
                        return false;
        return true;
}

static int parse_target(struct canon_parts *parts, const char *name, char *const *tok, size_t n)
{
        strbuf_printf(&parts->target, "-j %s", name);
        for (size_t i = 0; i < sizeof(canon_targetdefs) / sizeof(canon_targetdefs[0]); i++)
                if (strcmp(canon_targetdefs[i].name, name) == 0)
                        return canon_targetdefs[i].parse(parts, tok, n, &parts->target);
        /* ACCEPT, DROP, RETURN and user chains take no options. */
        if (n > 0 || !chain_name_ok(name))
                return -EINVAL;
        return 0;
}

/* ---- driver ---- */

static bool is_token(const char *tok, const char *a, const char *b)
{
        return strcmp(tok, a) == 0 || (b && strcmp(tok, b) == 0);
}

/* The base option named by tok, or _CANON_BASE_MAX. */
static enum canon_base base_of(const char *tok)
{
        enum canon_base b;

        for (b = 0; b < _CANON_BASE_MAX; b++)
                if (is_token(tok, canon_base_names[b].short_name, canon_base_names[b].long_name))
                        break;
        return b;
}

/* Stores a match option (and its argument, consumed from tok) in the match it belongs to. */
static int parse_match_option(struct canon_parts *parts, bool inv, char *const *tok, size_t n, size_t *i)
{
        const struct canon_opt *opt;
        struct canon_match *m;
        struct canon_slot *slot;
        int r;

        if (strncmp(tok[*i], "--", 2) != 0)
                return -EINVAL;
        r = route_option(parts, tok[*i], &m, &opt);
        if (r < 0)
                return r;
        slot = &m->slot[opt->slot];
        if (slot->set || (inv && !opt->invertible))
                return -EINVAL;
        slot->set = true;
        slot->inv = inv;
        slot->save_name = opt->save_name;
        (*i)++;
        if (!opt->parse)
                return 0;
        if (*i >= n)
                return -EINVAL;
        return opt->parse(tok[(*i)++], slot->val, sizeof(slot->val));
}

static int parse_tokens(struct canon_parts *parts, char *const *tok, size_t n)
{
        size_t i = 0;

        while (i < n) {
                enum canon_base b;
                bool inv = false;
                int r;

                if (strcmp(tok[i], "!") == 0) {
                        inv = true;
                        if (++i >= n || strcmp(tok[i], "!") == 0)
                                return -EINVAL;
                }

                b = base_of(tok[i]);
                if (b != _CANON_BASE_MAX) {
                        if (i + 1 >= n)
                                return -EINVAL;
                        r = parse_base(parts, b, inv, tok[i + 1]);
                        i += 2;
                } else if (is_token(tok[i], "-m", "--match")) {
                        const struct canon_matchdef *def;

                        if (inv || i + 1 >= n)
                                return -EINVAL;
                        def = matchdef_find(tok[i + 1]);
                        r = def && add_match(parts, def) ? 0 : -EINVAL;
                        i += 2;
                } else if (is_token(tok[i], "-j", "--jump")) {
                        /* Everything after the target name is the target's. */
                        if (inv || i + 1 >= n)
                                return -EINVAL;
                        return parse_target(parts, tok[i + 1], tok + i + 2, n - i - 2);
                } else {
                        r = parse_match_option(parts, inv, tok, n, &i);
                }
                if (r < 0)
                        return r;
        }
        return 0;
}

/* The whole-rule checks iptables makes once every option is read. */
static int check_parts(const struct canon_parts *parts)
{
        for (size_t i = 0; i < parts->n_matches; i++) {
                const struct canon_match *m = &parts->match[i];
                bool any = false;

                for (unsigned s = 0; s < CANON_MAX_SLOTS; s++)
                        any = any || m->slot[s].set;
                if (m->def->needs_option && !any)
                        return -EINVAL;
                if (m->def->proto != CANON_PROTO_NONE && m->def->proto != port_proto(parts))
                        return -EINVAL;
                if (m->def->needs_port_proto && port_proto(parts) == CANON_PROTO_NONE)
                        return -EINVAL;
        }
        return 0;
}

static void render(const struct canon_parts *parts, struct strbuf *out)
{
        const char *sep = "";

        for (enum canon_base b = 0; b < _CANON_BASE_MAX; b++) {
                const struct canon_base_slot *s = &parts->base[b];

                if (!s->set)
                        continue;
                strbuf_printf(out, "%s%s%s %s", sep, s->inv ? "! " : "",
                              canon_base_names[b].short_name, s->val);
                sep = " ";
        }
        for (size_t i = 0; i < parts->n_matches; i++) {
                const struct canon_match *m = &parts->match[i];

                strbuf_printf(out, "%s-m %s", sep, m->def->name);
                sep = " ";
                for (unsigned s = 0; s < CANON_MAX_SLOTS; s++) {
                        if (!m->slot[s].set)
                                continue;
                        strbuf_printf(out, " %s%s", m->slot[s].inv ? "! " : "", m->slot[s].save_name);
                        if (m->slot[s].val[0])
                                strbuf_printf(out, " %s", m->slot[s].val);
                }
        }
        if (parts->target.len)
                strbuf_printf(out, "%s%s", sep, strbuf_str(&parts->target));
}

int canon_rule(const char *spec, int family, char **ret)
{
        struct canon_parts *parts = NULL;
        struct strbuf out = STRBUF_NULL;
        char *copy = NULL, *tok[CANON_MAX_TOKENS];
        size_t n = 0, len;
        int r = -EINVAL;

        *ret = NULL;
        if (family != AF_INET && family != AF_INET6)
                return -EINVAL;
        len = strnlen(spec, CANON_MAX_SPEC + 1);
        if (len > CANON_MAX_SPEC)
                return -EINVAL;
        /* Single-space separated words only: no quoting, tabs or control characters. */
        for (size_t i = 0; i < len; i++)
                if ((unsigned char)spec[i] < ' ' || spec[i] == 0x7f || spec[i] == '"' || spec[i] == '\'')
                        return -EINVAL;

        copy = strdup(spec);
        parts = calloc(1, sizeof(*parts));
        if (!copy || !parts) {
                r = -ENOMEM;
                goto out;
        }
        parts->family = family;
        parts->target = (struct strbuf) STRBUF_NULL;
        for (char *save = NULL, *t = strtok_r(copy, " ", &save); t; t = strtok_r(NULL, " ", &save)) {
                if (n >= CANON_MAX_TOKENS)
                        goto out;
                tok[n++] = t;
        }

        r = parse_tokens(parts, tok, n);
        if (r < 0)
                goto out;
        if (parts->target.error) {
                r = parts->target.error;
                goto out;
        }
        r = check_parts(parts);
        if (r < 0)
                goto out;

        render(parts, &out);
        if (out.error) {
                r = out.error;
                goto out;
        }
        *ret = out.s ? strbuf_steal(&out) : strdup("");
        r = *ret ? 0 : -ENOMEM;
out:
        strbuf_deinit(&out);
        if (parts)
                strbuf_deinit(&parts->target);
        free(parts);
        free(copy);
        return r;
}
