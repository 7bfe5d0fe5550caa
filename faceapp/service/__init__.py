"""Use cases shared by the CLI and the GUI (enroll, import, identify...), on top of
engine, capture and store. No Qt here."""
