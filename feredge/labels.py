"""Expression label sets. A model carries its own list; never assume one order."""

FER2013_7 = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
RAFDB_7 = ("surprise", "fear", "disgust", "happy", "sad", "angry", "neutral")
AFFECTNET_8 = ("neutral", "happy", "sad", "surprise", "fear", "disgust", "angry", "contempt")
AFFECTNET_7 = AFFECTNET_8[:7]

LABEL_SETS = {
    "fer2013": FER2013_7,
    "rafdb": RAFDB_7,
    "affectnet7": AFFECTNET_7,
    "affectnet8": AFFECTNET_8,
}
