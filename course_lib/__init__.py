"""Reference implementations for the interactive course on multimodal fusion.

Each module holds one idea (text, vision and audio encoders, attention, contrastive
alignment, fusion strategies, architectures, the token budget); the chapter notebooks in
``notebooks/`` build each idea step by step and then import it from here.
"""

__version__ = "0.1.0"
