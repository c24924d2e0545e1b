"""UI pieces of the Gradio app; the depth itself always comes from depth.predict."""
