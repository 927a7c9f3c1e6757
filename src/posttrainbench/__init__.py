"""PostTrainBench: how well can an autonomous LLM agent post-train a base LLM?"""

__version__ = "0.1.0"
