"""Give the tiny base a lookup skill ("Which choice is 1254?") before the tiny recipe, and score MCQ on the result.

Lesson 03's tiny model picks multiple-choice letters no better than a guess. A real instruct model can already find a
number among lettered choices, so this script adds that skill to the tiny base's training mix (a `share` of its
examples), builds the base, scores the lookup on 200 fresh prompts, then trains lesson 01's recipe on the bundled
sample (plus lookup rows among the chat tasks) and scores held-out MCQ and 3-digit sums, on and off.
About 10 minutes to build the base and 6 to train, on one thread.
Run: `python scripts/mcq_base_lookup.py 0.25 --out /tmp/lookup [--variant sorted1]` (a second variant reuses the base).
"""
import argparse, collections, random, time
from pathlib import Path
import torch
import reasoning_nb.tasks as T, reasoning_nb.models as M
from mcq_formats import train_and_score, use_variant


def lookup_task(rng):
    "A number and four lettered choices (it and three near misses, as in the addition MCQ); the answer is its letter."
    s = rng.randint(100, 1998)
    choices, gold = T.addition_choices(s, 0, rng)  # choices for the sum s+0: s and three near misses
    letter = T.LETTERS[gold]
    return T.mcq_prompt(f'Which choice is {s}?', choices), [f'{s} is {letter}'], T.mcq_answer(letter)


def with_lookup(share):
    "Patch the base mix so `share` of its examples are lookups answered directly, and add lookups to the chat tasks."
    T.TASKS['chat'].append(lookup_task)
    plain = M._base_example

    def base_example(rng):
        if rng.random() >= share: return plain(rng)
        q, _, ans = lookup_task(rng)
        msgs = M._system(rng) + [{'role': 'user', 'content': q}]
        return M._chat_prefix(msgs), f'{M._EMPTY_THINK}{ans}<|im_end|>', 'lookup'
    M._base_example = base_example


def lookup_accuracy(path, n=200):
    "Greedy accuracy of the model at `path` on `n` fresh lookups, and the letters it picked."
    from transformers import AutoModelForCausalLM, AutoTokenizer
    tok, model = AutoTokenizer.from_pretrained(path), AutoModelForCausalLM.from_pretrained(path)
    rng = random.Random('lookup-eval')
    items = [lookup_task(rng) for _ in range(n)]
    convs = [[{'role': 'system', 'content': T.SYSTEM_OFF}, {'role': 'user', 'content': q}] for q, _, _ in items]
    replies = [r.strip() for r in M.generate(model, tok, convs, max_new_tokens=20)]
    right = sum(r.endswith(a) for r, (_, _, a) in zip(replies, items))
    return right / n, collections.Counter(r[-1:] for r in replies)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('share', type=float, help='fraction of the base mix that is lookups, e.g. 0.25')
    p.add_argument('--variant', default='current', help='an MCQ layout from scripts/mcq_formats.py')
    p.add_argument('--out', default='runs/mcq_base_lookup')
    p.add_argument('--threads', type=int, default=1)
    p.add_argument('--base-steps', type=int, default=1000, help="the base's training steps (1000 as shipped)")
    p.add_argument('--steps', type=int, default=None, help="the recipe's training steps (default: the tiny recipe's)")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    with_lookup(args.share)
    root = Path(args.out) / f'share{args.share}'
    t0 = time.perf_counter()
    base = root / 'assets' / 'tiny'
    if not (base / 'model.safetensors').exists():  # a second variant reuses the base
        M.build_tiny(base, steps=args.base_steps, threads=args.threads, verbose=False)
    print(f'base built in {time.perf_counter() - t0:.0f} s', flush=True)
    M.ASSETS = root / 'assets'  # the tiny preset now resolves to this base
    acc, letters = lookup_accuracy(base)
    print(f'base lookup accuracy {100 * acc:.1f}%, letters {dict(letters)}', flush=True)
    use_variant(args.variant)  # the base is built with the shipped MCQ layout; only the recipe's data changes
    train_and_score(root / args.variant, **({'max_steps': args.steps} if args.steps else {}))


if __name__ == '__main__':
    main()
