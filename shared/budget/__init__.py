"""API budgets shared by every process of the app, kept in one Table Storage row per budget.

=================  ============================================================================
``rules``          the ledger (what every holder holds) and the pure allocation rules
``holder``         one process's side: leases blocks of calls and concurrency, returns the rest
``gate``           the quota gate the engine and the scheduler consult before starting work
=================  ============================================================================

The row itself is read and written by :mod:`shared.state.budget_store`.
"""
