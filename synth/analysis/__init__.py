"""Analysis: embeddings, the map layout, clusters, metrics, filters and coverage."""
