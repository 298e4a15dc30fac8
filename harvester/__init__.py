"""Harvester: sources.yaml entries -> Scrapy crawls (one spider per kind) -> extracted documents in the store."""
