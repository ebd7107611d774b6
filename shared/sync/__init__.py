"""The sync engine: entity configuration, record transforms, and the job runner."""
