"""Chat service overhead: genesis in front of an OpenAI-compatible stub, against a bare Quart
proxy and the LiteLLM proxy under the same load (`python -m benchmarks.service`)."""
