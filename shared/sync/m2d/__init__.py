"""Marketo → Dynamics: the place for the return direction of leads and contacts.

It will hold the same parts as :mod:`shared.sync.d2m`, the other way round: a reader of
Marketo's lead changes (Get Lead Changes from a paging token), a Dataverse writer (``$batch``
updates, update-only), and the pipeline joining them. Nothing runs here yet: the runner refuses
``m2d`` jobs with an error naming the direction, because no pipeline is registered for it.
"""
