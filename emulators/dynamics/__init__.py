"""A Dataverse (Dynamics 365) Web API emulator: see README.md in this folder."""
