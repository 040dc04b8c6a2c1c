"""The ledger: the readable specification of the chain's state machine (pure).

Records and values (`records`), the rules of every operation (`rules` and the `rules_*`
modules it dispatches to), blocks and the one header check (`blocks.validate_header`),
the 16-ary sparse Merkle state tree over an abstract node store (`smt`, `smt_nodes`),
resolution proofs (`proof`) and genesis parsing (`genesis`). No disk, socket, clock or
asyncio: `node/` gives it LevelDB and time.
"""
