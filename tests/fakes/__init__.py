"""In-memory stand-ins for Azure Table Storage, Dataverse, Marketo and the job queue."""
