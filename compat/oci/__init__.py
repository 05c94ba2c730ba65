"""OCI access: references, media types, manifests, image layouts, the registry client."""
