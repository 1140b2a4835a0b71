"""The knowledge base: runbooks, docs, FAQ and accepted answers, searched with the database's full-text engine."""
