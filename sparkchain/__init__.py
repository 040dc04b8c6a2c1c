"""sparkchain: node software for an industrial-internet identifier ledger.

The one import package of the distribution. Its subpackages are the repository's
top-level folders (linked here, mapped by pyproject.toml): `identifiers`, `ledger` and
`consensus` are pure; `node` owns disk, network and time; `cli` is the `spark` command;
`proto` holds the gRPC/protobuf definitions and their generated modules.
"""
