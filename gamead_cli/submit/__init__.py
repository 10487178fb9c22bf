"""The jobs of ``gamead submit`` (the Typer command is :mod:`gamead_cli.commands.submit`), one module each:

* :mod:`~gamead_cli.submit.reading`: the ads to send, from a JSON file, an array, NDJSON, flags or generated
* :mod:`~gamead_cli.submit.batches`: pure decisions about batches (their size, what a per-ad answer means)
* :mod:`~gamead_cli.submit.sending`: sending many ads in batches, counting what became of each
* :mod:`~gamead_cli.submit.resending`: whether a batch's ads refused certainly unsent go again, when, or why not
* :mod:`~gamead_cli.submit.waiting`: following the ads sent until their analyses end (``--wait``)
* :mod:`~gamead_cli.submit.views`: what people see: progress bars, the 202 answer, the summary, rejections named
* :mod:`~gamead_cli.submit.runs`: one run (one ad or many): send, maybe wait, print, the exit code
"""
