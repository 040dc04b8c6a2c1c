"""The rules against a plain Python model of DESIGN §4 (tests/helpers/rules_model.py),
driven by hypothesis.

Random sequences of txs from several signers (authorised and not), replays, expired and
badly signed txs, and new blocks. For every tx the rules and the model must agree on
accepting it or on the error code; after every step the records and prefixes must be equal.
"""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from sparkchain.identifiers.errors import ErrorCode, SparkError
from sparkchain.proto import types_pb2 as pb
from tests.helpers.chain import RulesChain, TxMaker, key, make_test_genesis, value
from tests.helpers.rules_model import (
    BIDS,
    HOUR_MS,
    NAME_OF,
    NAMES,
    GeneratedTx,
    Model,
    Rejected,
    plain_prefix,
    plain_record,
    upper,
)

# valid choices repeat so that most txs get far enough to meet the stateful rules
OWNER_CHOICES = (*BIDS.values(), *BIDS.values(), *BIDS.values(), "", "bob", "did:bid:efXYZ")

PREFIXES = ("88", "88.1", "88.1.x", "88.1.X", "88.2", "99", "ab", "AB", "88..1", "8 8")
SUFFIXES = ("a", "A", "b", "x/y", " pad", "")
IDENTIFIERS = tuple(f"{p}/{s}" for p in ("88", "88.1", "88.1.x", "99", "ab") for s in SUFFIXES)
IDENTIFIERS += ("88-no-slash",)


# ---- strategies: each op as (name, fields); values as (index, type, data, ttl, timestamp)

# most txs are plausible (so they reach the stateful rules); some are wild (every field may
# be malformed). one_of picks a branch uniformly, so repeating a branch weights it.
good_value_st = st.one_of(
    st.tuples(
        st.sampled_from((1, 2, 3)),
        st.sampled_from(("URL", "EMAIL")),
        st.sampled_from(("https://e.com/1", "ops@e.com")),
        st.sampled_from((None, 0, 60)),
        st.just(0),
    ),
    st.just((2000, "spark.meta", '{"lot": "L1"}', None, 0)),
)
wild_value_st = st.tuples(
    st.sampled_from((0, 1, 2, 2000)),
    st.sampled_from(("URL", "spark.meta", "", "B AD")),
    st.sampled_from(("https://e.com/1", "{}", "[1]")),
    st.sampled_from((None, 60)),
    st.sampled_from((0, 0, 5)),
)
good_values_st = st.lists(good_value_st, max_size=3, unique_by=lambda v: v[0])
values_st = st.one_of(
    good_values_st, good_values_st, good_values_st, st.lists(wild_value_st, max_size=3)
)
bids_st = st.lists(st.sampled_from(OWNER_CHOICES), max_size=2)
prefix_st = st.one_of(st.sampled_from(("88", "88.1")), st.sampled_from(PREFIXES))
good_identifier_st = st.sampled_from(("88/a", "88/A", "88/b", "88/x/y", "88.1/a", "88.1/b"))
identifier_st = st.one_of(good_identifier_st, good_identifier_st, st.sampled_from(IDENTIFIERS))
owner_st = st.sampled_from(OWNER_CHOICES)

ops_st = st.one_of(
    st.tuples(
        st.just("register"),
        st.fixed_dictionaries(
            {
                "identifier": identifier_st,
                "values": values_st,
                "owner": st.sampled_from(("", "", *OWNER_CHOICES)),
            }
        ),
    ),
    st.tuples(
        st.just("update"),
        st.fixed_dictionaries(
            {
                "identifier": identifier_st,
                "upsert": st.one_of(
                    st.lists(good_value_st, min_size=1, max_size=2, unique_by=lambda v: v[0]),
                    values_st,
                ),
                "remove": st.one_of(
                    st.just([]), st.lists(st.sampled_from((1, 2, 3, 2000)), max_size=2)
                ),
            }
        ),
    ),
    st.tuples(
        st.just("register_batch"),
        st.fixed_dictionaries(
            {
                "prefix": prefix_st,
                "items": st.one_of(
                    st.lists(
                        st.tuples(st.sampled_from(("c", "d", "e", "f")), good_values_st),
                        min_size=1,
                        max_size=3,
                        unique_by=lambda item: item[0],
                    ),
                    st.lists(st.tuples(st.sampled_from(SUFFIXES), values_st), max_size=3),
                ),
                "owner": st.sampled_from(("", "", *OWNER_CHOICES)),
            }
        ),
    ),
    st.tuples(
        st.just("revoke"),
        st.fixed_dictionaries(
            {"identifier": identifier_st, "reason": st.sampled_from(("", "recall"))}
        ),
    ),
    st.tuples(
        st.just("transfer"),
        st.fixed_dictionaries({"identifier": identifier_st, "new_owner": owner_st}),
    ),
    st.tuples(
        st.just("set_registrars"),
        st.fixed_dictionaries({"prefix": prefix_st, "add": bids_st, "remove": bids_st}),
    ),
    st.tuples(
        st.just("create_prefix"), st.fixed_dictionaries({"prefix": prefix_st, "owner": owner_st})
    ),
    st.tuples(
        st.just("transfer_prefix"),
        st.fixed_dictionaries({"prefix": prefix_st, "new_owner": owner_st}),
    ),
)


def _pb_values(values: list[tuple[int, str, str, int | None, int]]) -> list[pb.Value]:
    out = []
    for index, type_, data, ttl, stamp in values:
        v = value(index, type_, data, ttl)
        v.timestamp_ms = stamp
        out.append(v)
    return out


def build_tx(
    maker: TxMaker, op: str, fields: dict[str, Any], now_ms: int, lifetime_ms: int
) -> pb.SignedTx:
    when = {"now_ms": now_ms, "lifetime_ms": lifetime_ms}
    if op == "create_prefix":
        return maker.create_prefix(fields["prefix"], fields["owner"], **when)
    if op == "set_registrars":
        return maker.set_registrars(fields["prefix"], fields["add"], fields["remove"], **when)
    if op == "transfer_prefix":
        return maker.transfer_prefix(fields["prefix"], fields["new_owner"], **when)
    if op == "register":
        return maker.register(
            fields["identifier"], _pb_values(fields["values"]), fields["owner"], **when
        )
    if op == "register_batch":
        items = [(s, _pb_values(v)) for s, v in fields["items"]]
        return maker.register_batch(fields["prefix"], items, fields["owner"], **when)
    if op == "update":
        return maker.update(
            fields["identifier"], _pb_values(fields["upsert"]), fields["remove"], **when
        )
    if op == "transfer":
        return maker.transfer(fields["identifier"], fields["new_owner"], **when)
    return maker.revoke(fields["identifier"], fields["reason"], **when)


class RulesAgainstModel(RuleBasedStateMachine):
    @initialize()
    def start(self) -> None:
        genesis = make_test_genesis(root_authorities=("root",), prefixes=(("88", "acme"),))
        self.chain = RulesChain(genesis)
        self.model = Model({BIDS["root"]}, {"88": BIDS["acme"]})
        self.makers = {
            name: TxMaker(genesis.chain_id, key(name), seed=i) for i, name in enumerate(NAMES)
        }
        self.foreign = TxMaker("another-chain", key("acme"), seed=99)
        self.sent: list[GeneratedTx] = []
        # a first block that every run starts from, so later steps meet existing records
        # and registrars (it goes through the same comparison as every other tx)
        opening = [
            ("acme", "create_prefix", {"prefix": "88.1", "owner": BIDS["bob"]}),
            ("acme", "set_registrars", {"prefix": "88", "add": [BIDS["reg"]], "remove": []}),
            (
                "acme",
                "register",
                {"identifier": "88/a", "values": [(1, "URL", "u", None, 0)], "owner": ""},
            ),
            ("reg", "register", {"identifier": "88/b", "values": [], "owner": ""}),
            ("bob", "register", {"identifier": "88.1/a", "values": [], "owner": BIDS["mallory"]}),
        ]
        for signer, op, fields in opening:
            signed = build_tx(self.makers[signer], op, fields, self.chain.time_ms, 600_000)
            self._submit(GeneratedTx(signed, signer, op, fields, self.chain.time_ms + 600_000))
        assert len(self.model.records) == 3

    def _submit(self, tx: GeneratedTx) -> None:
        expected: ErrorCode | None = None
        try:
            self.model.apply(tx, self.chain.height, self.chain.time_ms)
        except Rejected as rejected:
            expected = rejected.code
        got: ErrorCode | None = None
        try:
            self.chain.apply(tx.signed)
        except SparkError as error:
            got = error.code
        assert got == expected, f"{tx.op} {tx.fields} by {tx.signer}: rules {got}, model {expected}"
        event(f"{tx.op}: {got or 'accepted'}")
        self.sent.append(tx)

    def _authorised(self, op: str, fields: dict[str, Any]) -> list[str]:
        """Names the model would let sign this op (only to make such txs frequent)."""
        model = self.model
        if "identifier" in fields:
            record = model.records.get(upper(fields["identifier"]))
            prefix = model.prefixes.get(upper(fields["identifier"].split("/", 1)[0]))
            bids = [record.owner] if record and op != "register" else []
            if prefix is not None:
                bids += [prefix.owner, *(sorted(prefix.registrars) if op == "register" else [])]
        else:
            segments = fields["prefix"].split(".")
            if op == "create_prefix":
                segments = segments[:-1]
            bids = list(model.roots)
            for n in range(len(segments), 0, -1):
                found = model.prefixes.get(upper(".".join(segments[:n])))
                if found is not None:
                    bids = [
                        found.owner,
                        *(sorted(found.registrars) if op == "register_batch" else []),
                    ]
                    break
        return [NAME_OF[bid] for bid in bids if bid in NAME_OF]

    @rule(
        data=st.data(),
        op=ops_st,
        who=st.sampled_from(("authorised", "authorised", "any")),
        existing=st.sampled_from((True, True, False)),
        expiry=st.sampled_from(("normal",) * 10 + ("past", "too-far")),
        envelope=st.sampled_from(("good",) * 30 + ("bad-signature", "wrong-chain")),
    )
    def send(
        self,
        data: st.DataObject,
        op: tuple[str, dict[str, Any]],
        who: str,
        existing: bool,
        expiry: str,
        envelope: str,
    ) -> None:
        name, drawn = op
        fields = dict(drawn)
        if existing and "identifier" in fields and name != "register" and self.model.records:
            known = sorted(r.display for r in self.model.records.values())
            fields["identifier"] = data.draw(st.sampled_from(known), label="existing identifier")
        authorised = self._authorised(name, fields)
        if who == "authorised" and authorised:
            signer = data.draw(st.sampled_from(authorised), label="authorised signer")
        else:
            signer = data.draw(st.sampled_from(NAMES), label="any signer")
        now = self.chain.time_ms
        start, lifetime = {
            "normal": (now, 10 * 60 * 1000),
            "past": (now - 2000, 1000),
            "too-far": (now, HOUR_MS + 1),
        }[expiry]
        maker = self.foreign if envelope == "wrong-chain" else self.makers[signer]
        signed = build_tx(maker, name, fields, start, lifetime)
        if envelope == "bad-signature":
            signed.signature = bytes([signed.signature[0] ^ 1]) + signed.signature[1:]
        signer_name = "acme" if envelope == "wrong-chain" else signer
        self._submit(
            GeneratedTx(
                signed,
                signer_name,
                name,
                fields,
                start + lifetime,
                bad_signature=envelope == "bad-signature",
                wrong_chain=envelope == "wrong-chain",
            )
        )

    @rule(data=st.data(), now=st.sampled_from((False, False, False, True)))
    def replay(self, data: st.DataObject, now: bool) -> None:
        if now and self.sent:
            self._submit(data.draw(st.sampled_from(self.sent)))

    @rule(interval_ms=st.sampled_from((1000, 1000, 1, 20 * 60 * 1000)))
    def new_block(self, interval_ms: int) -> None:
        self.chain.next_block(interval_ms)

    @invariant()
    def same_records_and_prefixes(self) -> None:
        if not hasattr(self, "chain"):
            return
        records, prefixes = self.model.view()
        assert {k: plain_record(r) for k, r in self.chain.state.records.items()} == records
        assert {k: plain_prefix(p) for k, p in self.chain.state.prefixes.items()} == prefixes


RulesAgainstModel.TestCase.settings = settings(
    max_examples=300,
    stateful_step_count=50,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestRulesAgainstModel = RulesAgainstModel.TestCase
