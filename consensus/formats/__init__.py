"""Output formats for user text: restricted Markdown to sanitised HTML, and safe CSV."""
