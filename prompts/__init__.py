"""Prompts of the LLM crew (YAML roles/tasks, Markdown guidance): data files shipped in the wheel."""
