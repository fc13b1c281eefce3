"""The static analyzer's tools: one module per tool, all built on cli_tool.CliTool and source.py."""
