"""The Backstage software catalog: entity model, references, relations, loading, indexes."""
