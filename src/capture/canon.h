/*
 * Rule canonicalisation: turns a rule spec as pilotfish writes it into the restore input
 * (Istio's form, "-p tcp --dport 15008 -j RETURN") into the exact text iptables-save prints
 * for it once the kernel holds it ("-p tcp -m tcp --dport 15008 -j RETURN"), so that the
 * state check compares desired and live rules by string equality.
 *
 * The alternative, parsing the saved rules back into a rule model, would need a second
 * parser for every extension's save format; going one way only keeps the knowledge in one
 * place. What the kernel does to a rule is rendering, not semantics (SEMANTICS.md section 6):
 * -s, -d, -i, -o, -p are printed first in that order (each negated as "! -s"); matches keep
 * their written order, with the implicit -m tcp / -m udp placed where the first port option
 * appeared; each match prints its options in its own fixed order; addresses get a prefix
 * length and lose their host bits; marks and masks turn into hex; targets print their
 * defaults (MARK --set-xmark V/M, TPROXY --on-ip, CONNMARK --nfmask/--ctmask, REDIRECT
 * --to-ports). iptables-legacy and iptables-nft 1.8.9 print the same text for every rule
 * pilotfish emits (conformance corpus, observed-save-{legacy,nft}).
 *
 * Only the vocabulary pilotfish emits is understood; anything else is refused rather than
 * guessed, so the state check can never be fooled by a spec it only half understands.
 */
#pragma once

/*
 * Canonicalises one rule spec (the text after "-A CHAIN "). family is AF_INET or AF_INET6 and
 * decides which addresses are valid and the TPROXY --on-ip default.
 *
 * Understood: [!] -s/-d ADDR[/LEN], [!] -i/-o IFACE, [!] -p tcp|udp; -m tcp|udp ([!] --sport,
 * [!] --dport: PORT or LO:HI), -m multiport ([!] --sports|--dports|--ports LIST), -m owner
 * ([!] --uid-owner, [!] --gid-owner: numeric ID or LO-HI, [!] --socket-exists), -m mark and
 * -m connmark ([!] --mark V[/M]), -m conntrack ([!] --ctstate LIST); targets ACCEPT, DROP,
 * RETURN, a user chain, REDIRECT (--to-ports/--to-port, --random), MARK (--set-mark,
 * --set-xmark, --and-mark, --or-mark, --xor-mark), CONNMARK (those, --save-mark,
 * --restore-mark, --nfmask, --ctmask, --mask), TPROXY (--on-port, --on-ip, --tproxy-mark)
 * and CT (--notrack, --zone). Numbers are read as iptables reads them (0x hex, leading-0
 * octal). The output is accepted as input and canonicalises to itself.
 *
 * Refused with -EINVAL: any other token, a user or group NAME in --uid-owner/--gid-owner
 * (iptables resolves it through NSS at apply time and saves the number, which a pure
 * function cannot know), a missing or duplicated option, a port option without -p tcp/udp,
 * an address of the other family, a spec longer than 4096 bytes or with more than 128 tokens.
 *
 * Returns 0 and a malloc'd string in *ret (the caller frees it), -EINVAL, or -ENOMEM.
 */
int canon_rule(const char *spec, int family, char **ret);
