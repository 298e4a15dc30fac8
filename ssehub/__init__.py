"""ssehub: search and harvesting for Social and Solidarity Economy literature, tagged by SDG."""

__version__ = "0.1.0"
