#!/usr/bin/env python3
"""Re-tally a published Consensus process from its public board, with Python alone.

Usage:
    python3 retally.py BOARD.jsonl RULE.json [--round N] [--lang nl|en] [--json]
    python3 retally.py BOARD.jsonl --rule consensus --quorum 2 --participants vng,ipo,uvw,bzk \
        --round 5 --version-sha256 HEX

Both files are on the process's public page (/public/<process>). board.jsonl holds every
stance ever cast, in recorded order; rule.json the decision rule, the participating
organisations, and the outcomes the platform fixed. Without rule.json, give the rule,
participants, round and version on the command line (then there is nothing to compare to).

How it counts (docs/endorsements.md): per round, the last line of each organisation is its
stance; it counts only if it is on the version the outcome is about (same SHA-256). One
organisation, one voice; a participant without a counted stance did not respond and does
not endorse. Then the rule decides:

    consensus           no objection, everyone responded, endorsed >= max(quorum, 1)
    consent             no objection, responded >= quorum
    unanimity           every participant endorsed
    qualified_majority  endorsed * 100 >= share * participants, responded >= quorum

It prints the same sentence the platform shows, and whether it agrees with the outcome in
rule.json. Exit status: 0 agrees (or nothing to compare), 1 disagrees, 2 bad input.

Standard library only, on purpose: anyone can read it in a few minutes.
"""

from __future__ import annotations

import argparse
import json
import sys

ENDORSING = {"endorse", "endorse_with_reservations"}
KINDS = {"endorse", "endorse_with_reservations", "abstain", "object"}

# The platform's sentences, in its two languages (keep in step with web/endorsements.py).
TEXT = {
    "nl": {
        "endorsed": (
            "{num} van {total} organisaties stemde in",
            "{num} van {total} organisaties stemden in",
        ),
        "abstained": ("{num} onthield zich", "{num} onthielden zich"),
        "no_response": ("{num} reageerde niet", "{num} reageerden niet"),
        "objections": ("{num} bezwaar", "{num} bezwaren"),
        "no_objections": "geen bezwaren",
        "consensus": ("consensus bereikt", "geen consensus"),
        "consent": ("vastgesteld met consent", "niet vastgesteld met consent"),
        "unanimity": ("unaniem vastgesteld", "geen unanimiteit"),
        "qualified_majority": (
            "gekwalificeerde meerderheid bereikt",
            "geen gekwalificeerde meerderheid",
        ),
        "no_participants": "er nemen geen organisaties deel",
        "not_all_responded": "niet elke organisatie reageerde",
        "not_all_endorsed": "niet elke organisatie stemde in",
        "endorsement_quorum_not_met": (
            "minstens {num} moest instemmen",
            "minstens {num} moesten instemmen",
        ),
        "response_quorum_not_met": (
            "minstens {num} moest reageren",
            "minstens {num} moesten reageren",
        ),
        "share_not_met": "{share}% moest instemmen",
        "adopted": "vastgesteld",
        "not_adopted": "niet vastgesteld",
        "agrees": "Komt overeen met de uitkomst die het platform publiceerde.",
        "disagrees": "WIJKT AF van de uitkomst die het platform publiceerde: {detail}",
        "round": "Ronde {round} ({title}), versie {number} (SHA-256 {sha})",
    },
    "en": {
        "endorsed": (
            "{num} of {total} organisations endorsed",
            "{num} of {total} organisations endorsed",
        ),
        "abstained": ("{num} abstained", "{num} abstained"),
        "no_response": ("{num} did not respond", "{num} did not respond"),
        "objections": ("{num} objection", "{num} objections"),
        "no_objections": "no objections",
        "consensus": ("consensus reached", "no consensus"),
        "consent": ("adopted by consent", "not adopted by consent"),
        "unanimity": ("adopted unanimously", "no unanimity"),
        "qualified_majority": ("qualified majority reached", "no qualified majority"),
        "no_participants": "no organisations take part",
        "not_all_responded": "not every organisation responded",
        "not_all_endorsed": "not every organisation endorsed",
        "endorsement_quorum_not_met": (
            "at least {num} had to endorse",
            "at least {num} had to endorse",
        ),
        "response_quorum_not_met": (
            "at least {num} had to respond",
            "at least {num} had to respond",
        ),
        "share_not_met": "{share}% had to endorse",
        "adopted": "adopted",
        "not_adopted": "not adopted",
        "agrees": "Agrees with the outcome the platform published.",
        "disagrees": "DISAGREES with the outcome the platform published: {detail}",
        "round": "Round {round} ({title}), version {number} (SHA-256 {sha})",
    },
}


def plural(lang: str, key: str, num: int, **values: object) -> str:
    singular, many = TEXT[lang][key]
    return (singular if num == 1 else many).format(num=num, **values)


def read_board(path: str) -> list[dict]:
    lines = []
    with open(path, encoding="utf-8") as handle:
        for number, raw in enumerate(handle, start=1):
            if not raw.strip():
                continue
            line = json.loads(raw)
            if line.get("stance") not in KINDS:
                raise ValueError(f"line {number}: unknown stance {line.get('stance')!r}")
            lines.append(line)
    return lines


def counted_stances(board: list[dict], round_: int, sha256: str | None) -> dict[str, str]:
    """The last stance of each organisation in the round, if it is on the given version."""
    last: dict[str, dict] = {}
    for line in board:
        if line["round"] == round_:
            last[line["organisation"]] = line
    return {
        org: line["stance"]
        for org, line in last.items()
        if sha256 is not None and line["version"]["sha256"] == sha256
    }


def tally(participants: list[str], stances: dict[str, str]) -> dict[str, int]:
    kinds = [stances[org] for org in set(participants) if org in stances]
    return {
        "participants": len(set(participants)),
        "endorsed": sum(k in ENDORSING for k in kinds),
        "with_reservations": sum(k == "endorse_with_reservations" for k in kinds),
        "abstained": kinds.count("abstain"),
        "objected": kinds.count("object"),
        "no_response": len(set(participants)) - len(kinds),
    }


def decide(rule: str, quorum: int, share: int | None, t: dict[str, int]) -> list[str]:
    """Reasons the rule is not met; an empty list means adopted."""
    n = t["participants"]
    responded = t["endorsed"] + t["abstained"] + t["objected"]
    if n == 0:
        return ["no_participants"]
    reasons = []
    if rule == "consensus":
        if t["objected"]:
            reasons.append("objection")
        if t["no_response"]:
            reasons.append("not_all_responded")
        if t["endorsed"] < max(quorum, 1):
            reasons.append("endorsement_quorum_not_met")
    elif rule == "consent":
        if t["objected"]:
            reasons.append("objection")
        if responded < quorum:
            reasons.append("response_quorum_not_met")
    elif rule == "unanimity":
        if t["endorsed"] < n:
            reasons.append("not_all_endorsed")
    elif rule == "qualified_majority":
        if t["endorsed"] * 100 < (share or 100) * n:
            reasons.append("share_not_met")
        if responded < quorum:
            reasons.append("response_quorum_not_met")
    else:
        raise ValueError(f"unknown rule {rule!r}")
    return reasons


def explain(
    lang: str, rule: str, quorum: int, share: int | None, t: dict[str, int], reasons: list[str]
) -> str:
    text = TEXT[lang]
    parts = [plural(lang, "endorsed", t["endorsed"], total=t["participants"])]
    if t["abstained"]:
        parts.append(plural(lang, "abstained", t["abstained"]))
    if t["no_response"]:
        parts.append(plural(lang, "no_response", t["no_response"]))
    objections = (
        plural(lang, "objections", t["objected"]) if t["objected"] else text["no_objections"]
    )
    verdict = text[rule][0 if not reasons else 1]
    sentence = f"{', '.join(parts)}; {objections}: {verdict}"
    why = []
    for reason in reasons:
        if reason == "objection":
            continue
        if reason == "endorsement_quorum_not_met":
            why.append(plural(lang, reason, max(quorum, 1)))
        elif reason == "response_quorum_not_met":
            why.append(plural(lang, reason, quorum))
        elif reason == "share_not_met":
            why.append(text[reason].format(share=share or 100))
        else:
            why.append(text[reason])
    if why:
        sentence += f" ({'; '.join(why)})"
    return sentence


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Re-tally a Consensus process from its public board."
    )
    parser.add_argument("board", help="board.jsonl from the public page")
    parser.add_argument("rule_file", nargs="?", help="rule.json from the public page")
    parser.add_argument("--round", type=int, help="only this round (its sequence number)")
    parser.add_argument("--lang", choices=["nl", "en"], default="nl")
    parser.add_argument("--json", action="store_true", help="print one JSON object per round")
    parser.add_argument(
        "--rule", choices=["consensus", "consent", "unanimity", "qualified_majority"]
    )
    parser.add_argument("--quorum", type=int)
    parser.add_argument("--share", type=int, help="qualified majority share, in percent")
    parser.add_argument("--participants", help="comma-separated organisation identifiers")
    parser.add_argument("--version-sha256", help="the version the round is about")
    args = parser.parse_args(argv)

    try:
        board = read_board(args.board)
        document = {}
        if args.rule_file:
            with open(args.rule_file, encoding="utf-8") as handle:
                document = json.load(handle)
        participants = (
            args.participants.split(",")
            if args.participants
            else [p["organisation"] for p in document.get("participants", [])]
        )
        rounds = []
        for published in document.get("outcomes", []):
            rounds.append(
                {
                    "round": published["round"],
                    "title": published.get("round_title", ""),
                    "version": published["version"],
                    "rule": args.rule or published["decision_rule"],
                    "quorum": args.quorum if args.quorum is not None else published["quorum"],
                    "share": args.share
                    if args.share is not None
                    else published["qualified_share_percent"],
                    "published": published,
                }
            )
        if not rounds:
            if args.round is None or args.rule is None or not args.version_sha256:
                parser.error(
                    "without a rule.json with outcomes give --round, --rule and --version-sha256"
                )
            rounds.append(
                {
                    "round": args.round,
                    "title": "",
                    "version": {"number": "?", "sha256": args.version_sha256},
                    "rule": args.rule,
                    "quorum": args.quorum or 0,
                    "share": args.share,
                    "published": None,
                }
            )
        if args.round is not None:
            rounds = [r for r in rounds if r["round"] == args.round]
    except (OSError, ValueError, KeyError) as error:
        print(f"retally: {error}", file=sys.stderr)
        return 2

    status = 0
    for item in rounds:
        version = item["version"] or {"number": "-", "sha256": None}
        stances = counted_stances(board, item["round"], version["sha256"])
        counts = tally(participants, stances)
        reasons = decide(item["rule"], item["quorum"], item["share"], counts)
        sentence = explain(args.lang, item["rule"], item["quorum"], item["share"], counts, reasons)
        published = item["published"]
        agrees = None
        detail = ""
        if published is not None:
            mismatches = [key for key in counts if published["tally"].get(key) != counts[key]]
            if published["adopted"] != (not reasons):
                mismatches.insert(0, "adopted")
            agrees = not mismatches
            detail = ", ".join(mismatches)
        if args.json:
            print(
                json.dumps(
                    {
                        "round": item["round"],
                        "adopted": not reasons,
                        "tally": counts,
                        "reasons": reasons,
                        "explanation": sentence,
                        "agrees": agrees,
                    },
                    ensure_ascii=False,
                    sort_keys=True,
                )
            )
        else:
            text = TEXT[args.lang]
            print(
                text["round"].format(
                    round=item["round"],
                    title=item["title"],
                    number=version["number"],
                    sha=version["sha256"],
                )
            )
            for org in sorted(set(participants)):
                print(f"  {org}: {stances.get(org, '-')}")
            print(sentence)
            print(text["adopted"] if not reasons else text["not_adopted"])
            if agrees is not None:
                print(text["agrees"] if agrees else text["disagrees"].format(detail=detail))
        if agrees is False:
            status = 1
    return status


if __name__ == "__main__":
    sys.exit(main())
