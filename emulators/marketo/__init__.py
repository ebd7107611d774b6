"""A faithful local emulator of the Marketo REST API (identity, leads, activities, lead-database
objects, bulk lead import, limits), built from Adobe's developer documentation.

Start one with :func:`emulators.marketo.runner.run_marketo_emulator` or
``dmsync emulator marketo``; the package README documents the API and the control endpoints.
"""
