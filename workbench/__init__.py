"""workbench: a terminal workbench for AWS Lambda functions."""

__version__ = "0.1.0"
