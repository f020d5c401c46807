"""The pipeline as a library: nox sessions and invoke tasks are thin shells over its modules.

`genesis.pipeline.build` makes the distributions, the SBOM and the image (`nox -s build`);
`genesis.pipeline.chart` keeps the Helm chart's copies of the monitoring assets current.
"""
