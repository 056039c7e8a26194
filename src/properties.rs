//! Property tests over the whole evaluation (being written).
