"""`lstm-music serve`: a local web page to choose a model, generate, and listen.

`create_app` (in `lstm_music.web.app`) builds the FastAPI application; nothing here runs on import
and nothing imports FastAPI until the app is built, so `import lstm_music` stays light. The page
(`static/`) is plain HTML, CSS and JavaScript that talks to the documented JSON API.
"""
