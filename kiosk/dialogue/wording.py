"""Every sentence the kiosk says or shows on its own, in one table (やさしい日本語).

Kept apart from the state machine so the wording can be reviewed, and changed by a city, in
one place.
"""

from __future__ import annotations

from dataclasses import dataclass

from kiosk.content.contract import AS_OF_SENTENCE


@dataclass(frozen=True)
class Prompts:
    """Everything the kiosk says on its own, in やさしい日本語: short, conclusion first."""

    invitation: str = "ボタンを押して、知りたいことを話してください。"
    speak_now: str = "知りたいことを話してください。"
    not_heard: str = "聞こえませんでした。もう一度、ゆっくり話してください。"
    bye_no_speech: str = "お話が聞こえなかったので、終わります。また、ボタンを押してください。"
    ask_back: str = "{topic}についてですか？はい、か、いいえ、で答えてください。"
    not_found: str = "すみません。その答えは見つかりませんでした。"
    offer_categories: str = "{categories}などの分類から、画面で選べます。別の言い方で、もう一度話すこともできます。"
    no_more: str = "ほかの答えは、見つかりませんでした。"
    category_list: str = "{category}には、{titles}などがあります。画面で選ぶか、知りたいことを話してください。"
    follow_up_hint: str = "もう一度聞くときは、もう一度、と言ってください。終わるときは、終わり、と言ってください。"
    still_there: str = "まだお使いですか？続けるときは、ボタンを押してください。"
    extended: str = "はい。続けます。"
    goodbye: str = "ご利用ありがとうございました。"
    timed_out: str = "時間になったので、終わります。ご利用ありがとうございました。"
    rate_changed: str = "この速さで話します。"
    volume_changed: str = "この大きさで話します。"
    headphones_on: str = "イヤホンで話します。"
    headphones_off: str = "スピーカーで話します。"
    mic_lost: str = "いま、マイクが使えません。画面のボタンか、文字の入力で調べてください。"
    mic_back: str = "マイクが使えるようになりました。"
    speaker_lost: str = "音が出ません。係の人に知らせてください。画面でも調べられます。"
    nothing_to_repeat: str = "まだ、お答えしていません。ボタンを押して、知りたいことを話してください。"
    # Under every answer (screen) and after a stale one (voice): where the facts come from
    # and when they were checked against the city's page.
    as_of: str = AS_OF_SENTENCE
    source_line: str = "出典：{source}"
    checked_line: str = "確認日：{date}"



#: The screen's headline for each conversation state (State.value -> sentence).
STATUS = {
    "idle": Prompts.invitation,
    "prompting": "知りたいことを話してください。",
    "listening": "聞いています。話し終わったら、少し待つか、ボタンを押してください。",
    "thinking": "調べています。少しお待ちください。",
    "answering": "お答えしています。",
    "clarifying": "確かめています。",
    "suggesting": "答えが見つかりませんでした。分類から選ぶか、別の言い方で話してください。",
    "waiting": "ほかに知りたいことがあれば、ボタンを押して話してください。",
    "warning": "まだお使いですか？続けるときは、ボタンを押してください。",
}

