"""A local Azure Functions host for ``function_app.py`` (``dmsync host``).

Azure Functions Core Tools cannot be installed here, so this package runs the app the way the
Functions host and Python worker do, against the storage in ``AzureWebJobsStorage`` (Azurite
locally). One module per job:

* :mod:`~dmsync.host.app_settings`: ``local.settings.json``, ``%Setting%`` references, host id
* :mod:`~dmsync.host.host_config`: ``host.json`` queue options and their app-setting overrides
* :mod:`~dmsync.host.app_loader`, :mod:`~dmsync.host.function_index`: import and index the app
* :mod:`~dmsync.host.ncrontab`, :mod:`~dmsync.host.timer_status`, :mod:`~dmsync.host.timers`:
  timer triggers
* :mod:`~dmsync.host.queue_backend`, :mod:`~dmsync.host.message_codec`,
  :mod:`~dmsync.host.polling`, :mod:`~dmsync.host.queues`: queue triggers
* :mod:`~dmsync.host.bindings`, :mod:`~dmsync.host.outputs`, :mod:`~dmsync.host.invoker`:
  invocation
* :mod:`~dmsync.host.runtime`: the host itself; :mod:`~dmsync.host.command`: the CLI
"""
