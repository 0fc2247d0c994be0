"""How quickly the kiosk starts speaking: time to first audio, total synthesis time and the
real-time factor for 20 typical spoken answers (about 60 characters each).

    python3 bench/tts_bench.py [--slow] [--repeat N]

First audio = from handing the speakable text to Voice.synthesize until the first clip is
ready to play (the lead-in pause is not counted). Target: median ≤ 150 ms.
RTF = synthesis time / audio duration (below 1 means faster than it is spoken).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kiosk.config import VoiceSettings  # noqa: E402
from kiosk.voice.speakable import Speakable  # noqa: E402
from kiosk.voice.synthesis import Voice  # noqa: E402

ANSWERS = [
    "市役所の受付時間は、平日の8:30〜17:15です。土・日・祝日はお休みです。お急ぎの方は、まず電話でご相談ください。",
    "住民票の写しは、市民課の窓口か、マイナンバーカードを使ってコンビニで取れます。手数料は、どちらも1通300円です。",
    "燃えるごみは週2回、朝8時までに決められた場所へ出してください。収集日は地区ごとに違うので、カレンダーで確かめてください。",
    "粗大ごみは予約制です。電話046-225-2780で申し込んでください。受付は、平日の8:30から17:00までです。",
    "本厚木駅から市役所までは、歩いて約10分です。バスも使えます。車でお越しの方は、地下駐車場をご利用ください。",
    "中央図書館は月曜日がお休みです。ただし、祝日の場合は開いています。開館時間は、火曜日から金曜日が9:00〜20:00です。",
    "指定避難所は、お近くの小学校や公民館です。荻野公民館も避難所です。場所は、市のホームページや防災マップで確認できます。",
    "大雨のときは、早めに近くの避難場所へ移動してください。夜に移動するのは危ないので、明るいうちに動きましょう。",
    "印鑑登録には、本人確認ができる書類と、登録する印鑑が必要です。代理の方の場合は、委任状も一緒に持ってきてください。",
    "国民健康保険の手続きは、保険年金課で受け付けています。窓口は2Fです。保険証と本人確認の書類をお持ちください。",
    "子育ての相談は、子ども家庭課で受け付けています。電話でも相談できます。相談は無料で、相談した内容の秘密は守られます。",
    "市役所の駐車場は、手続きのある方は1時間まで無料です。窓口で駐車券を見せて、無料にするための確認の印をもらってください。",
    "夜間や休日の急な病気は、#7119に電話すると相談できます。命に関わるときは、迷わずすぐに119番に電話してください。",
    "令和7年4月1日から、新しい手数料になります。1通300円です。詳しくは、市民課の窓口か電話でお問い合わせください。",
    "おむつの無料配布は、1歳になるまでのお子さんのいる家庭が対象です。申し込みは、子ども家庭課の窓口で受け付けています。",
    "愛甲石田駅の近くには、愛甲公民館があります。館内では無料のWi-Fiも使えます。開館時間は、毎日9:00〜21:00です。",
    "転入の届け出は、引っ越してから14日以内に、市民課で手続きしてください。前の住所の市役所でもらう転出証明書が必要です。",
    "高齢者の方の相談は、地域包括支援センターで受け付けています。介護や健康、暮らしのことなど、なんでも気軽に相談できます。",
    "犬を飼ったときは、30日以内に登録と狂犬病の予防注射をしてください。登録の手続きは、環境政策課の窓口で受け付けます。",
    "投票所の入場券をなくしても、投票所で本人確認ができれば投票できます。投票時間は、朝7:00から夜20:00までです。",
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slow", action="store_true", help="measure the slow pace (6 morae/s)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per answer (median kept)")
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore", DeprecationWarning)  # pyopenjtalk's use of sudachipy

    start = time.perf_counter()
    voice = Voice(VoiceSettings())
    load = time.perf_counter() - start
    speakable = Speakable(voice.settings)
    texts = [speakable.normalise(a) for a in ANSWERS]

    firsts, totals, rtfs = [], [], []
    print(f"{'chars':>5} {'first ms':>9} {'total ms':>9} {'audio s':>8} {'RTF':>6}  answer")
    for answer, text in zip(ANSWERS, texts):
        runs = []
        for _ in range(max(1, args.repeat)):
            runs.append(voice.first_audio_seconds(text, slow=args.slow))
        first = statistics.median(r[0] for r in runs)
        total = statistics.median(r[1] for r in runs)
        audio = sum(c.duration for c in voice.synthesize(text, slow=args.slow))
        firsts.append(first)
        totals.append(total)
        rtfs.append(total / audio)
        print(f"{len(answer):5d} {first * 1000:9.0f} {total * 1000:9.0f} {audio:8.2f} "
              f"{total / audio:6.3f}  {answer[:24]}…")

    median_chars = statistics.median(len(a) for a in ANSWERS)
    first_median = statistics.median(firsts) * 1000
    print()
    print(f"voice load + calibration: {load:.2f} s")
    print(f"pace: {voice.rate_for(args.slow):.1f} morae/s ({'slow' if args.slow else 'normal'}); "
          f"answers: {len(ANSWERS)}, median {median_chars:.0f} characters")
    print(f"time to first audio: median {first_median:.0f} ms, "
          f"max {max(firsts) * 1000:.0f} ms (target ≤ 150 ms median)")
    print(f"total synthesis: median {statistics.median(totals) * 1000:.0f} ms per answer")
    print(f"real-time factor: median {statistics.median(rtfs):.3f}")
    return 0 if first_median <= 150 else 1


if __name__ == "__main__":
    sys.exit(main())
