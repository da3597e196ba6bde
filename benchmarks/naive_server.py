"""A naive server kept as a baseline: one `generate` per request, the way a popular guide serves.

    python benchmarks/naive_server.py --model RUN_DIR_OR_PRESET --port 8001

Each request gets its own `generate` (streaming through `TextIteratorStreamer` on a thread per request), so
concurrent requests never share a forward pass. Like the guide's, the stream is labelled `text/plain`; it sends
OpenAI-style `data:` lines only so that `serve_throughput.py` can time both servers with one client. Not
handled on purpose (the point is the comparison): thinking separation, limits, metrics, auth, errors.
"""
import argparse, json, threading

import torch
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse
from transformers import TextIteratorStreamer

from reasoning_nb.serve import cpu_threads, encode_prompt, load_for_serving


def create_naive_app(model, tok):
    "A FastAPI app whose `/v1/chat/completions` runs one `generate` per request."
    app = FastAPI()
    model.eval()

    def _generate(prompt, max_tokens, ignore_eos, streamer=None):
        ids = torch.tensor([prompt])
        kw = dict(max_new_tokens=max_tokens, do_sample=False, pad_token_id=tok.pad_token_id,
                  eos_token_id=tok.eos_token_id)
        if ignore_eos: kw['min_new_tokens'] = max_tokens
        with torch.no_grad(): return model.generate(ids, attention_mask=torch.ones_like(ids), streamer=streamer, **kw)

    @app.post('/v1/chat/completions')
    async def chat(request: Request):
        body = await request.json()
        think = not any(m['role'] == 'system' and 'off' in m['content'] for m in body['messages'])
        prompt = encode_prompt(tok, [m for m in body['messages'] if m['role'] != 'system'], think)
        n, ignore_eos = body.get('max_tokens', 256), body.get('ignore_eos', False)
        if not body.get('stream'):
            out = _generate(prompt, n, ignore_eos)[0, len(prompt):]
            return JSONResponse({'choices': [{'message': {'content': tok.decode(out)}}],
                                 'usage': {'completion_tokens': len(out), 'prompt_tokens': len(prompt)}})
        streamer = TextIteratorStreamer(tok, skip_prompt=True)
        count = [0]
        def run(): count[0] = _generate(prompt, n, ignore_eos, streamer).shape[1] - len(prompt)
        worker = threading.Thread(target=run, daemon=True); worker.start()
        def events():
            for piece in streamer:
                yield f"data: {json.dumps({'choices': [{'delta': {'content': piece}}]})}\n\n"
            worker.join()
            yield f"data: {json.dumps({'choices': [], 'usage': {'completion_tokens': count[0]}})}\n\n"
            yield 'data: [DONE]\n\n'
        return StreamingResponse(events(), media_type='text/plain')

    @app.get('/health')
    async def health(): return {'status': 'ok'}
    return app


if __name__ == '__main__':
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--model', required=True)
    p.add_argument('--host', default='127.0.0.1')
    p.add_argument('--port', type=int, default=8001)
    p.add_argument('--threads', type=int, default=None, help='torch CPU threads (same default as reasoning-nb serve)')
    a = p.parse_args()
    torch.set_num_threads(cpu_threads(a.threads))  # same as ours: the comparison is about batching, not threads
    uvicorn.run(create_naive_app(*load_for_serving(a.model)), host=a.host, port=a.port, log_level='warning')
