"""``make bench``: the real app (``dmsync host`` on ``function_app.py``) syncing contacts and their
accounts from the Dataverse emulator to the Marketo emulator, measured from outside.

Modules: :mod:`.procstat` (CPU and memory of one process from ``/proc``), :mod:`.stack` (Azurite,
both emulators and the seeded data), :mod:`.host` (the host subprocess and its sampler),
:mod:`.initial` and :mod:`.latency` (the two measured phases), :mod:`.figures` (pure arithmetic:
bounds, ideal call counts, percentiles, targets), :mod:`.others` (the emulator and governor
benchmarks), :mod:`.report` (``latest.json``, the printed table, docs/benchmarks.md) and
:mod:`.cli` (the command).
"""
