"""Speech out: an answer's text → what the voice should say → sound.

    speakable (readings, numbers, pauses: text made for the ear) → synthesis (Open JTalk,
    through the pyttsx3 driver in openjtalk.py) → a Speaker

CONTRACT:
    Speakable(voice_settings).for_answer(answer) / .for_entry(entry) -> str
    Voice(voice_settings).speak(text, speaker, stop_event) / .synthesize(text) -> AudioClip
"""
