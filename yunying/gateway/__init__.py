"""Edge gateway (前置机): receive, queue, compress, upload to the cloud."""
