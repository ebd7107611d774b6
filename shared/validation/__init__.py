"""The validate checklist: one list of checks, run by ``dmsync validate`` and by the app at start.

* :mod:`.results`: a check's outcome (✔ / ⚠ / ✘ / not checked) with what to do about it;
* :mod:`.dynamics_checks`, :mod:`.marketo_checks`, :mod:`.state_checks`: the checks of each side;
* :mod:`.checklist`: runs them in order and, for the app, turns the ✘ lines into telemetry and a
  refusal to start.
"""
