"""The AI analyzer: an OpenAI-compatible model reviews an app's requirements and code."""
