"""Model calls: litellm providers (the embedded model among them), batching, structured output, licences."""
