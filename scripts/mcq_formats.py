"""Try a multiple-choice format on the tiny tier: rebuild the sample with it, train lesson 01's recipe, score it.

Lesson 03's multiple-choice section shows the tiny model picking letters no better than a guess. This script is how
other MCQ layouts were measured: it swaps `tasks.mcq_prompt` / `tasks.mcq_thinking` for a variant, rebuilds the sample
(only the MCQ rows change), trains the tiny recipe on it and scores held-out MCQ and 3-digit additions, on and off.
One variant takes about 5 minutes on 2 cores (`--steps` more: longer). `countback` is the one layout measured to work:
with `--n-mcq 4000 --steps 800` (twice the recipe's steps), not reliably with the recipe's 400 (lesson 03 says why);
the same examples in half-size steps (`--steps 800 --batch-size 32`), without lr decay (`--min-lr-rate 1.0`) or with a
larger LoRA (`--r 64 --lora-alpha 128`, which also breaks the additions) fail.
Run: `python scripts/mcq_formats.py countback --out /tmp/mcq [--steps 800] [--n-mcq 4000] [--seed 1] [--lr ...]`.
"""
import argparse, collections, time
from pathlib import Path
import reasoning_nb.tasks as T, reasoning_nb.evaluate as E, reasoning_nb.grading as G
from reasoning_nb.runs import train, load_trained, add_recipe_flags, recipe_overrides
from reasoning_nb.train import train_config


def prompt_question_first(question, choices):
    "The question, the lettered choices, then the instruction (the shipped prompt puts the question last)."
    ls = T.LETTERS[:len(choices)]
    opts = '\n'.join(f'{l}. {c}' for l, c in zip(ls, choices))
    return (f'{question}\n\n{opts}\n\nChoose the best answer. End your response with "The final answer is [letter]", '
            f'where [letter] is one of {", ".join(ls)}.')


def thinking_yes_no(a, b, choices):
    "The column trace, then one `A. 1252 no` / `D. 1254 yes` line per choice."
    s = str(a + b)
    return T.addition_trace(a, b) + [f'{l}. {c} {"yes" if c == s else "no"}' for l, c in zip(T.LETTERS, choices)]


def thinking_swapped(a, b, choices):
    "The column trace, each choice restated number first (`1252 A`), then the sum and its letter (`1254 D`)."
    s = str(a + b)
    return (T.addition_trace(a, b) + [f'{c} {l}' for l, c in zip(T.LETTERS, choices)]
            + [f'{s} {T.LETTERS[choices.index(s)]}'])


def _scan(a, b, choices, with_sum):
    "The column trace, the sum, then one line per choice up to the one that holds it, ending `no` or `yes`."
    s = str(a + b)
    k = choices.index(s)
    beside = f' {s}' if with_sum else ''
    return (T.addition_trace(a, b) + [s]
            + [f'{l}. {c}{beside} {"yes" if c == s else "no"}' for l, c in zip(T.LETTERS[:k + 1], choices)])


def thinking_scan(a, b, choices):
    "The column trace, the sum, then one `A. 1252 no` line per choice, stopping at the one that holds it (`yes`)."
    return _scan(a, b, choices, with_sum=False)


def thinking_scan_pair(a, b, choices):
    "Like `thinking_scan`, with the sum beside each choice (`A. 1252 1254 no`) so the comparison sits in one line."
    return _scan(a, b, choices, with_sum=True)


def sorted_choices(step):
    "Choices as four numbers `step` apart in increasing order, the sum at a random place among them."
    def choices(a, b, rng, digits=3):
        s = a + b
        k = min(rng.randrange(4), s // step)
        cs = [s - step * k + step * i for i in range(4)]
        return [str(c) for c in cs], k
    return choices


def thinking_offset(a, b, choices):
    "The column trace, then how far the sum is from the first choice, which names the letter: `1254-1234=20 so C`."
    s, first = a + b, int(choices[0])
    return T.addition_trace(a, b) + [f'{s}-{first}={s - first} so {T.LETTERS[choices.index(str(s))]}']


def thinking_countback(a, b, choices):
    """The column trace, then the last choice's last digit minus the sum's (borrowing ten), which names the letter.

    With consecutive increasing choices (`sorted_choices(1)`) every step is a digit read at a fixed place (the last
    choice ends just before the question; the sum's last digit ends the first trace line) or one-digit arithmetic:
    `D: 08-6=2 so B`. Nothing has to match a whole number against the choices."""
    s, d = (a + b) % 10, int(choices[-1][-1])
    top = d + 10 if d < s else d
    last, letter = T.LETTERS[len(choices) - 1], T.LETTERS[choices.index(str(a + b))]
    return T.addition_trace(a, b) + [f'{last}: {top:02d}-{s}={top - s} so {letter}']


VARIANTS = {'current': (None, None), 'qfirst': (prompt_question_first, None),
            'qfirst_yesno': (prompt_question_first, thinking_yes_no),
            'qfirst_swap': (prompt_question_first, thinking_swapped),
            'scan': (prompt_question_first, thinking_scan), 'scan_pair': (prompt_question_first, thinking_scan_pair),
            'sorted1': (prompt_question_first, thinking_offset, sorted_choices(1)),
            'sorted10': (prompt_question_first, thinking_offset, sorted_choices(10)),
            'countback': (None, thinking_countback, sorted_choices(1))}


def use_variant(name):
    "Patch the prompt and thinking of variant `name` into every module that builds or reads MCQ prompts."
    prompt, thinking, *choices = VARIANTS[name]
    if choices: T.addition_choices = choices[0]
    if prompt: T.mcq_prompt = E.mcq_prompt = G.mcq_prompt = prompt
    if thinking: T.mcq_thinking = thinking


def train_and_score(out, label='', n_mcq=None, **overrides):
    "Write the sample to `out`, train the tiny recipe on it (with `overrides`), print MCQ and sum scores."
    path = T.write_jsonl(T.sample_records(**({'n_mcq': n_mcq} if n_mcq else {})), out / 'sample.jsonl')
    t0 = time.perf_counter()
    train(train_config('tiny', **overrides), data=str(path), out=out / 'run', progress=False)
    print(f'trained in {time.perf_counter() - t0:.0f} s', flush=True)
    model, tok = load_trained(out / 'run')
    for task, n in [('tiny-mcq', 200), ('tiny-add', 100)]:
        items = G.load_task(task, n)
        for mode in ['on', 'off']:
            r = E.evaluate(model, tok, items, mode, max_new_tokens=120)
            s = r['summary']
            print(f"{label}{task} {mode}: {100 * s['accuracy']:.1f}% "
                  f"[{100 * s['ci_low']:.1f}, {100 * s['ci_high']:.1f}]", flush=True)
            if task == 'tiny-mcq': print('  letters:', dict(collections.Counter(x['extracted'] for x in r['records'])))
            if mode == 'on': print('  first reply:', repr(r['records'][0]['reply']))


RECIPE_FLAGS = dict(seed=int, lr=float, min_lr_rate=float, batch_size=int, r=int, lora_alpha=int)  # recipe knobs to try


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('variant', choices=sorted(VARIANTS))
    p.add_argument('--out', default='runs/mcq_formats', help='folder for the sample and the run')
    p.add_argument('--n-mcq', type=int, default=None, help="multiple-choice rows in the sample (default: the sample's)")
    p.add_argument('--steps', type=int, dest='max_steps', help="training steps (default: the tiny recipe's)")
    add_recipe_flags(p, RECIPE_FLAGS, None)
    args = p.parse_args()
    overrides = recipe_overrides(args, {'max_steps': int, **RECIPE_FLAGS})
    use_variant(args.variant)
    train_and_score(Path(args.out) / args.variant, f'{args.variant} ', args.n_mcq, **overrides)

if __name__ == '__main__':
    main()
