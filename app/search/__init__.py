"""Message search: the query language (``query``) and the indexed text (``text``). Pure."""
