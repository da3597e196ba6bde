"""One `reasoning-nb` entry point that dispatches to the lesson modules.

Each module owns its sub-command: it defines `add_cli(parser)`, which adds its arguments to an
`argparse` sub-parser and sets `func=` to the function that runs it. Only the chosen module is
imported, so `reasoning-nb --help` stays fast. Errors a user can fix (bad data, a missing file,
a bad option) print one clear line and exit 1, never a traceback.
"""
import argparse, importlib, sys

COMMANDS = {  # sub-command -> (module, one-line help)
    'demo':   ('reasoning_nb.demo',     'run the whole course on the tiny tier: base, curate, LoRA, evaluate, report'),
    'data':   ('reasoning_nb.curation', 'validate, analyse and curate Nemotron-style datasets'),
    'train':  ('reasoning_nb.runs',     'LoRA-train a reasoning model with the thinking toggle'),
    'memory': ('reasoning_nb.memory',   'estimate training memory and say whether it fits a card'),
    'eval':   ('reasoning_nb.evaluate', 'evaluate base vs thinking on/off with intervals'),
    'serve':  ('reasoning_nb.serve',    'serve a model with an OpenAI-compatible API'),
    'export': ('reasoning_nb.export',   'write a run as a merged model for vLLM, SGLang or TGI; print how to serve it'),
    'rl':     ('reasoning_nb.rl',       'RL (GRPO) on the SFT model: "detailed thinking auto" learns when to think'),
}
ADD_CLI = {'demo': 'add_demo_cli'}  # modules holding two commands name the second adder here

class UsageError(ValueError):
    "An error the user can fix; printed as one line without a traceback."

def _parser(chosen=None):
    "The `reasoning-nb` parser; only the `chosen` sub-command's module is imported, for a fast `--help`."
    about = 'Train and serve a reasoning model whose thinking can be switched on and off.'
    p = argparse.ArgumentParser(prog='reasoning-nb', description=about)
    sub = p.add_subparsers(dest='command', metavar='COMMAND')
    for name, (mod, help) in COMMANDS.items():
        sp = sub.add_parser(name, help=help, description=help)
        if name == chosen: getattr(importlib.import_module(mod), ADD_CLI.get(name, 'add_cli'))(sp)
    return p

def main(argv=None):
    "Run `reasoning-nb` with `argv` (defaults to `sys.argv[1:]`); returns the exit code."
    argv = sys.argv[1:] if argv is None else list(argv)
    chosen = next((a for a in argv if not a.startswith('-')), None)
    p = _parser(chosen if chosen in COMMANDS else None)
    args = p.parse_args(argv)
    if not getattr(args, 'func', None):
        p.print_help()
        return 0 if not argv or chosen is None else 2
    try:
        rc = args.func(args)
    except KeyboardInterrupt:
        print('interrupted', file=sys.stderr)
        return 130
    except (ValueError, FileNotFoundError, NotADirectoryError, PermissionError, OSError, RuntimeError) as e:
        print(f'reasoning-nb {args.command}: error: {e}', file=sys.stderr)
        return 1
    return int(rc or 0)

if __name__ == '__main__': sys.exit(main())
