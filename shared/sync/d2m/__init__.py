"""Dynamics → Marketo: Dataverse change tracking read, Marketo REST writes.

* :mod:`.reader`: the Dataverse change reader (pages, deltas, rows, existence, identity);
* :mod:`.writer`: the Marketo record writer (Sync Leads and the object sync endpoints);
* :mod:`.records`: one page of records planned, written and remembered;
* :mod:`.memory`: what a page stores (mappings, sync errors, pending links);
* :mod:`.transformers`: row transformers, refreshed with their lookup tables;
* :mod:`.pipeline`: the direction as the job runner drives it.
"""
