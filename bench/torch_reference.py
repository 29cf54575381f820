# PyTorch reference on the same GPU, for the ratios bench/gpu_compare.sh reports (kept in the repository so a
# comparison can be repeated anywhere with a CUDA GPU, torch, transformers and peft):
# cuBLAS SGEMM ceiling; HF LlamaForCausalLM training throughput
# (fp32, bf16 autocast, LoRA r=16 in bf16 and fp32, 7B-shape LoRA bf16); forward-only scoring (fp32, no grad)
# and greedy decoding with the KV cache (fp32). Every figure is one line starting "RESULT torch".
# Run: python3 bench/torch_reference.py (bench/gpu_compare.sh runs it when python3 can import torch).
import time, sys, torch
dev = "cuda"
print("torch", torch.__version__, torch.cuda.get_device_name(0), flush=True)
def mm(dtype, tf32, n=4096, iters=20):
    torch.backends.cuda.matmul.allow_tf32 = tf32
    a = torch.randn(n, n, device=dev, dtype=dtype); b = torch.randn(n, n, device=dev, dtype=dtype)
    for _ in range(3): a @ b
    torch.cuda.synchronize(); t = time.perf_counter()
    for _ in range(iters): a @ b
    torch.cuda.synchronize(); ms = (time.perf_counter() - t) / iters * 1e3
    print(f"RESULT torch matmul n={n} dtype={dtype} tf32={tf32} ms={ms:.3f} TFLOPs={2*n**3/ms/1e9:.2f}", flush=True)
mm(torch.float32, False); mm(torch.float32, True); mm(torch.bfloat16, False)

from transformers import LlamaConfig, LlamaForCausalLM
def train(name, cfg, bs, seq, mode, steps=6):
    torch.manual_seed(0)
    model = LlamaForCausalLM(cfg).to(dev)
    if mode in ("lora", "lora32"):
        from peft import LoraConfig, get_peft_model
        if mode == "lora": model = model.to(torch.bfloat16)
        model = get_peft_model(model, LoraConfig(r=16, lora_alpha=32, target_modules=["q_proj","k_proj","v_proj","o_proj","gate_proj","up_proj","down_proj"]))
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-5, fused=True)
    ids = torch.randint(0, cfg.vocab_size, (bs, seq), device=dev)
    def step():
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=(mode == "amp")):
            loss = model(input_ids=ids, labels=ids).loss
        loss.backward(); opt.step(); opt.zero_grad(set_to_none=True)
    for _ in range(2): step()
    torch.cuda.synchronize(); t = time.perf_counter()
    for _ in range(steps): step()
    torch.cuda.synchronize(); dt = (time.perf_counter() - t) / steps
    n = sum(p.numel() for p in model.parameters())
    print(f"RESULT torch train {name} mode={mode} params={n/1e6:.0f}M bs={bs} seq={seq} step_ms={dt*1e3:.1f} tok_s={bs*seq/dt:.0f} mem_GB={torch.cuda.max_memory_allocated()/1e9:.1f}", flush=True)
    del model, opt; torch.cuda.empty_cache(); torch.cuda.reset_peak_memory_stats()
tiny = LlamaConfig(vocab_size=32000, hidden_size=2048, intermediate_size=5632, num_hidden_layers=22, num_attention_heads=32, num_key_value_heads=4, max_position_embeddings=2048)
for mode in ["fp32", "amp", "lora", "lora32"]:
    try: train("tinyllama-1.1b", tiny, 4, 1024, mode)
    except Exception as e: print("FAIL", mode, repr(e)[:300], flush=True)

@torch.no_grad()
def score(name, cfg, bs, seq, iters=10):
    # KoBEST-style scoring: one forward pass and per-token log-probs of the targets, fp32.
    torch.manual_seed(0)
    model = LlamaForCausalLM(cfg).to(dev).eval()
    ids = torch.randint(0, cfg.vocab_size, (bs, seq), device=dev)
    def run():
        logits = model(input_ids=ids).logits[:, :-1].float()
        return torch.log_softmax(logits, -1).gather(-1, ids[:, 1:, None]).sum()
    for _ in range(2): run()
    torch.cuda.synchronize(); t = time.perf_counter()
    for _ in range(iters): run()
    torch.cuda.synchronize(); dt = (time.perf_counter() - t) / iters
    print(f"RESULT torch score {name} bs={bs} seq={seq} ms={dt*1e3:.1f} tok_s={bs*seq/dt:.0f} mem_GB={torch.cuda.max_memory_allocated()/1e9:.1f}", flush=True)
    del model; torch.cuda.empty_cache(); torch.cuda.reset_peak_memory_stats()

@torch.no_grad()
def decode(name, cfg, bs, prompt, new):
    # Greedy generation with the KV cache, fp32: prefill then `new` tokens per sequence.
    torch.manual_seed(0)
    model = LlamaForCausalLM(cfg).to(dev).eval()
    ids = torch.randint(0, cfg.vocab_size, (bs, prompt), device=dev)
    kw = dict(max_new_tokens=new, min_new_tokens=new, do_sample=False, pad_token_id=0)
    model.generate(ids, **dict(kw, max_new_tokens=4, min_new_tokens=4))
    torch.cuda.synchronize(); t = time.perf_counter()
    model(input_ids=ids); torch.cuda.synchronize(); prefill = time.perf_counter() - t
    t = time.perf_counter(); model.generate(ids, **kw); torch.cuda.synchronize(); dt = time.perf_counter() - t
    print(f"RESULT torch decode {name} bs={bs} prompt={prompt} new={new} prefill_tok_s={bs*prompt/prefill:.0f} "
          f"decode_tok_s={bs*new/max(dt - prefill, 1e-9):.0f} total_s={dt:.2f}", flush=True)
    del model; torch.cuda.empty_cache(); torch.cuda.reset_peak_memory_stats()

for fn, args in [(score, ("tinyllama-1.1b", tiny, 16, 512)), (decode, ("tinyllama-1.1b", tiny, 16, 512, 128))]:
    try: fn(*args)
    except Exception as e: print("FAIL", fn.__name__, repr(e)[:300], flush=True)

llama7b = LlamaConfig(vocab_size=32000, hidden_size=4096, intermediate_size=11008, num_hidden_layers=32, num_attention_heads=32, num_key_value_heads=32, max_position_embeddings=4096)
try: train("llama-7b", llama7b, 1, 1024, "lora", steps=3)
except Exception as e: print("FAIL", "llama-7b lora", repr(e)[:300], flush=True)
