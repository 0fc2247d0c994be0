"""Voice stage: speakable text → audio, through pyttsx3 with the project's Open JTalk driver.

CONTRACT:
    Voice.synthesize(text, *, slow=False) -> Iterator[AudioClip]   — sentence by sentence
    Voice.speak(text, speaker, stop_event, *, slow=False)           — first sound fast
"""
