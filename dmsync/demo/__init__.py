"""``dmsync demo``: the whole product, end to end, on this machine, in a few minutes.

It starts a private Azurite and both emulators, seeds a realistic Dynamics organisation, runs
the real app (``dmsync host`` on the repository's ``function_app.py``) until the initial sync is
done, makes changes through the Dataverse Web API and shows each arriving in Marketo, then ends
with the reconciliation report of ``dmsync reconcile``. Everything it started is stopped on the
way out, also after a failure or Ctrl-C.

| module | job |
|---|---|
| ``command`` | options and the order of the stages; exit status |
| ``processes`` | Azurite, the emulators and the host as child processes; the app settings |
| ``scenario`` | scales, seeding the Dynamics organisation, what was seeded |
| ``progress`` | progress bars of the initial sync, read from the watermarks |
| ``changes`` | the changes made through the Web API and how each is recognised in Marketo |
| ``arrivals`` | watching the changes land, with their latency |
| ``observe`` | reading Marketo (control API) and the state store for the above |
| ``output`` | timestamped lines on stdout |
"""
