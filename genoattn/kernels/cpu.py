"""CPU fast paths: never materialise more than one block of scores.

Same contracts as :mod:`genoattn.kernels.reference` (read its docstrings). The routes:

* dense / varlen: torch ``scaled_dot_product_attention``, whose CPU kernel is a tiled flash
  (online softmax over key blocks) kernel; varlen runs one call per sequence on views, batching
  sequences of equal length (no padding);
* block-sparse: per query block, gather the listed key blocks (query blocks grouped by how many key
  blocks they list, in memory-bounded chunks) and run SDPA over the gathered keys;
* local-global: query blocks attend a band of ``block + 2 * (window // 2)`` keys (a strided view)
  plus the ``g`` global keys, memory ``O(n * (w + g))``; global queries attend everything;
* graph (GAT on CSR): destination nodes in chunks of at most ``chunk_edges`` in-edges, segment
  softmax with ``segment_reduce``/``index_add``, forward and backward written out so that only a
  chunk's ``[edges, heads, dim]`` gather exists at a time (never one over all edges).

Rows without any allowed key return zeros and zero gradient.
"""

from __future__ import annotations

import bisect
import math

import torch
import torch.nn.functional as F

from genoattn.kernels.reference import NEG, neg_for

BLOCK_Q = 128
CHUNK_BYTES = 64 << 20  # budget for one chunk's gathered keys/values + scores
LG_BLOCK_Q = 64
GRAPH_CHUNK_EDGES = 8192
GROUP_MIN = 4  # varlen: sequences sharing a length are batched into one call from this many on


# ----------------------------------------------------------------------------- helpers

def _sdpa(q, k, v, allowed, scale):
    """SDPA with a boolean ``allowed`` mask (broadcastable to [..., Lq, Lk]) and the zero-row rule.

    Rows without any allowed key are computed unmasked (no NaN, no huge numbers) and multiplied by
    zero, so they return zeros and pass zero gradient.
    """
    if allowed is None:
        return F.scaled_dot_product_attention(q, k, v, scale=scale)
    row_any = allowed.any(-1, keepdim=True)
    full = bool(row_any.all())
    if not full:
        allowed = allowed | ~row_any
    bias = torch.zeros(allowed.shape, dtype=q.dtype, device=q.device).masked_fill_(~allowed, neg_for(q.dtype))
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias, scale=scale)
    return out if full else out * row_any.to(out.dtype)


def _scale(q, scale):
    return scale if scale is not None else 1.0 / math.sqrt(q.shape[-1])


# ----------------------------------------------------------------------------- dense

def dense_attention(q, k, v, key_padding_mask=None, scale=None, block_q: int | None = None):
    """Dense bidirectional attention. q, k, v: [B, H, L, D]; key_padding_mask: [B, L] (True = real).

    Default route: SDPA (flash CPU kernel, key-padding as a [B, 1, 1, L] additive mask).
    ``block_q=n`` instead tiles the queries by hand (one ``[B, H, n, L]`` score block at a time).
    """
    scale = _scale(q, scale)
    if block_q is None:
        allowed = None if key_padding_mask is None else key_padding_mask.bool()[:, None, None, :]
        return _sdpa(q, k, v, allowed, scale)
    L = q.shape[2]
    allowed = None if key_padding_mask is None else key_padding_mask.bool()[:, None, None, :]
    outs = [_sdpa_math(q[:, :, s:s + block_q], k, v, allowed, scale) for s in range(0, L, block_q)]
    return torch.cat(outs, dim=2) if outs else torch.zeros_like(q)


def _sdpa_math(q, k, v, allowed, scale):
    scores = (q @ k.transpose(-1, -2)) * scale
    if allowed is not None:
        scores = scores.masked_fill(~allowed, neg_for(scores.dtype))
    p = torch.softmax(scores, dim=-1)
    if allowed is not None:
        p = p * allowed.to(p.dtype)
    return p @ v


# ----------------------------------------------------------------------------- varlen

def varlen_attention(q, k, v, cu_seqlens, max_seqlen=None, scale=None):
    """Packed sequences. q, k, v: [T, H, D]; cu_seqlens [S+1]. Returns [T, H, D].

    One unmasked SDPA call per sequence on a strided view (no copy, no padding), the results
    concatenated once; sequences sharing a length with >= GROUP_MIN others are gathered into one
    call, so many short sequences do not cost one Python call each.
    """
    scale = _scale(q, scale)
    T, H, D = q.shape
    cu = cu_seqlens.to("cpu", torch.int64)
    lengths = cu[1:] - cu[:-1]
    if T == 0 or lengths.numel() == 0:
        return torch.zeros_like(q)
    # torch.split (not slicing per sequence): its backward is one concatenation of the pieces
    # gradients, where per-sequence slices would each materialise a full-size gradient
    parts = [t.split(lengths.tolist(), 0) for t in (q, k, v)]
    slots: list = [None] * lengths.numel()  # per sequence its output, concatenated in order at the end
    uniq, inverse = torch.unique(lengths, return_inverse=True)
    order = torch.argsort(inverse, stable=True)
    counts = torch.bincount(inverse, minlength=uniq.numel()).tolist()
    pos = 0
    for L, n in zip(uniq.tolist(), counts):
        seqs = order[pos:pos + n]
        pos += n
        if L == 0:
            continue
        if n < GROUP_MIN:
            for i in seqs.tolist():
                x = [t[i].transpose(0, 1)[None] for t in parts]  # [1, H, L, D] views
                slots[i] = F.scaled_dot_product_attention(*x, scale=scale)[0].transpose(0, 1)
            continue
        x = [torch.stack([t[i] for i in seqs.tolist()]).permute(0, 2, 1, 3) for t in parts]  # [n, H, L, D]
        o = F.scaled_dot_product_attention(*x, scale=scale).permute(0, 2, 1, 3)  # [n, L, H, D]
        for i, oi in zip(seqs.tolist(), o.unbind(0)):  # unbind: backward is one stack, not n copies
            slots[i] = oi
    # one concatenation (its backward hands out views): no per-sequence copies of the whole gradient
    return torch.cat([x for x in slots if x is not None])


# ----------------------------------------------------------------------------- block-sparse

def block_sparse_attention(q, k, v, layout, token_mask=None, scale=None, chunk_bytes: int = CHUNK_BYTES):
    """Block-sparse attention (contract: reference.block_sparse_attention).

    Query blocks are grouped by their number of key blocks ``c``; per chunk of such query blocks the
    ``c`` key/value blocks are gathered into ``[B, rows * H, c * bs, D]`` and SDPA runs over them.
    """
    scale = _scale(q, scale)
    B, H, N, D = q.shape
    bs = layout.block_size
    nb = -(-N // bs)
    Np = nb * bs
    indptr = layout.indptr.to("cpu", torch.int64)
    indices = layout.indices.to(q.device, torch.int64)
    if indptr.numel() - 1 < nb:
        raise ValueError(f"layout has {indptr.numel() - 1} query blocks but the sequence needs {nb}")
    pad = Np - N
    if pad:
        q, k, v = (F.pad(x, (0, 0, 0, pad)) for x in (q, k, v))
    tok = torch.ones(B, N, dtype=torch.bool, device=q.device) if token_mask is None else token_mask.bool()
    tok = F.pad(tok, (0, pad), value=False).view(B, nb, bs)
    qv = q.view(B, H, nb, bs, D).transpose(1, 2)  # [B, nb, H, bs, D]
    kv_ = k.view(B, H, nb, bs, D).transpose(1, 2)
    vv = v.view(B, H, nb, bs, D).transpose(1, 2)
    counts = (indptr[1:] - indptr[:-1])[:nb]
    starts = indptr[:-1][:nb]
    rows_out, outs = [], []
    itemsize = q.element_size()
    for c in torch.unique(counts).tolist():
        rows = torch.nonzero(counts == c).flatten()
        if c == 0:
            continue
        per_row = B * H * (2 * c * bs * D + bs * c * bs + 2 * bs * D) * itemsize
        step = max(1, chunk_bytes // max(per_row, 1))
        for r0 in range(0, rows.numel(), step):
            r = rows[r0:r0 + step]
            nr = r.numel()
            kidx = (starts[r][:, None] + torch.arange(c)[None, :]).flatten()
            kb_ids = indices[kidx.to(indices.device)]  # [nr * c]
            rq = r.to(q.device)
            qg = qv[:, rq].reshape(B, nr * H, bs, D)
            kg = kv_[:, kb_ids].view(B, nr, c, H, bs, D).transpose(2, 3).reshape(B, nr * H, c * bs, D)
            vg = vv[:, kb_ids].view(B, nr, c, H, bs, D).transpose(2, 3).reshape(B, nr * H, c * bs, D)
            allowed = tok[:, kb_ids].view(B, nr, 1, 1, c * bs)
            if token_mask is None and not pad:
                o = F.scaled_dot_product_attention(qg, kg, vg, scale=scale)
            else:
                allowed = allowed.expand(B, nr, H, 1, c * bs).reshape(B, nr * H, 1, c * bs)
                o = _sdpa(qg, kg, vg, allowed, scale)
            outs.append(o.view(B, nr, H, bs, D))
            rows_out.append(r)
    empty = torch.nonzero(counts == 0).flatten()
    if empty.numel():
        outs.append(q.new_zeros(B, empty.numel(), H, bs, D))
        rows_out.append(empty)
    rows_all = torch.cat(rows_out)
    inv = torch.empty_like(rows_all)
    inv[rows_all] = torch.arange(rows_all.numel())
    out = torch.cat(outs, dim=1)[:, inv.to(q.device)]  # [B, nb, H, bs, D]
    return out.transpose(1, 2).reshape(B, H, Np, D)[:, :, :N]


# ----------------------------------------------------------------------------- local-global

def local_global_attention(q, k, v, window: int, n_global: int, segment_ids=None, key_padding_mask=None,
                           scale=None, block_q: int = LG_BLOCK_Q, chunk_bytes: int = CHUNK_BYTES):
    """Sliding window + global tokens (contract: reference.local_global_attention).

    Memory O(N * (block_q + window + g)) in chunks: query block b attends the band
    ``[b*bq - w//2, b*bq + bq + w//2)`` (a strided view of the padded keys) plus the g global keys.
    """
    scale = _scale(q, scale)
    B, H, N, D = q.shape
    half = window // 2
    g = max(0, min(int(n_global), N))
    bq = block_q
    nqb = -(-N // bq)
    Np = nqb * bq
    kw = bq + 2 * half
    dev = q.device
    kpm = None if key_padding_mask is None else key_padding_mask.bool()
    # padded keys: padded position p <-> token p - half
    kp = F.pad(k, (0, 0, half, Np - N + half))
    vp = F.pad(v, (0, 0, half, Np - N + half))
    qp = F.pad(q, (0, 0, 0, Np - N))
    seg = None if segment_ids is None else segment_ids.to(dev)
    itemsize = q.element_size()
    per_block = B * H * (2 * (kw + g) * D + bq * (kw + g) + 2 * bq * D) * itemsize
    step = max(1, chunk_bytes // max(per_block, 1))
    outs = []
    for b0 in range(0, nqb, step):
        b1 = min(nqb, b0 + step)
        nbk = b1 - b0
        # keys of the band: [B, H, nbk, kw, D] (unfold is a view; reshape copies one chunk)
        span = kp[:, :, b0 * bq:(b1 - 1) * bq + kw]
        kband = span.unfold(2, kw, bq).transpose(-1, -2)
        vband = vp[:, :, b0 * bq:(b1 - 1) * bq + kw].unfold(2, kw, bq).transpose(-1, -2)
        ipos = (torch.arange(b0, b1, device=dev)[:, None] * bq + torch.arange(bq, device=dev)[None, :])  # [nbk,bq]
        jpos = (torch.arange(b0, b1, device=dev)[:, None] * bq - half + torch.arange(kw, device=dev)[None, :])
        jc = jpos.clamp(0, N - 1)
        band = (jpos >= g) & (jpos < N)
        allowed = band[:, None, :] & ((ipos[:, :, None] - jpos[:, None, :]).abs() <= half)  # [nbk,bq,kw]
        if seg is not None:
            ic = ipos.clamp(max=N - 1)
            allowed = allowed & (seg[ic][:, :, None] == seg[jc][:, None, :])
        allowed = allowed[None]  # [1, nbk, bq, kw]
        if kpm is not None:
            allowed = allowed & kpm[:, jc][:, :, None, :]  # [B, nbk, bq, kw]
        if g:
            gall = torch.ones(1, 1, 1, g, dtype=torch.bool, device=dev) if kpm is None else kpm[:, None, None, :g]
            allowed = torch.cat([gall.expand(allowed.shape[0], nbk, bq, g), allowed], dim=-1)
            kband = torch.cat([k[:, :, None, :g].expand(B, H, nbk, g, D), kband], dim=3)
            vband = torch.cat([v[:, :, None, :g].expand(B, H, nbk, g, D), vband], dim=3)
        kk = kband.shape[3]
        qg = qp[:, :, b0 * bq:b1 * bq].reshape(B, H, nbk, bq, D).transpose(1, 2).reshape(B * nbk, H, bq, D)
        kg = kband.transpose(1, 2).reshape(B * nbk, H, kk, D)
        vg = vband.transpose(1, 2).reshape(B * nbk, H, kk, D)
        allowed = allowed.expand(B, nbk, bq, kk).reshape(B * nbk, 1, bq, kk)
        o = _sdpa(qg, kg, vg, allowed, scale)  # [B*nbk, H, bq, D]
        outs.append(o.view(B, nbk, H, bq, D).transpose(1, 2).reshape(B, H, nbk * bq, D))
    local = torch.cat(outs, dim=2)[:, :, :N]
    if g == 0:
        return local
    glob = _sdpa(q[:, :, :g], k, v, None if kpm is None else kpm[:, None, None, :], scale)
    return torch.cat([glob, local[:, :, g:]], dim=2)


# ----------------------------------------------------------------------------- graph (GAT on CSR)

def _chunks(indptr_list: list[int], chunk_edges: int):
    """Destination-node ranges [n0, n1) whose in-edges number at most chunk_edges (or one node)."""
    N = len(indptr_list) - 1
    n0 = 0
    while n0 < N:
        limit = indptr_list[n0] + chunk_edges
        n1 = bisect.bisect_right(indptr_list, limit, lo=n0 + 1) - 1
        n1 = min(N, max(n1, n0 + 1))
        yield n0, n1
        n0 = n1


def _edge_logits(a_src, a_dst, ebias, src, dl, n0, n1, e0, e1, cdt):
    z = a_src.index_select(0, src).to(cdt) + a_dst[n0:n1].to(cdt).index_select(0, dl)
    if ebias is not None:
        z = z + ebias[e0:e1].to(cdt)
    return z


class _GraphAttention(torch.autograd.Function):
    @staticmethod
    def forward(ctx, h, a_src, a_dst, ebias, indptr, indices, slope, chunk_edges):
        N, H, D = h.shape
        cdt = torch.float64 if h.dtype == torch.float64 else torch.float32
        out = torch.zeros(N, H, D, dtype=cdt, device=h.device)
        lse = torch.full((N, H), -NEG, dtype=cdt, device=h.device)  # +large: no in-edge
        ip = indptr.tolist()
        deg = indptr[1:] - indptr[:-1]
        hf = h.reshape(N, H * D)
        outf = out.view(N, H * D)
        for n0, n1 in _chunks(ip, chunk_edges):
            e0, e1 = ip[n0], ip[n1]
            if e1 == e0:
                continue
            src = indices[e0:e1]
            cnt = deg[n0:n1]
            dl = torch.repeat_interleave(torch.arange(n1 - n0, device=h.device), cnt)
            z = _edge_logits(a_src, a_dst, ebias, src, dl, n0, n1, e0, e1, cdt)
            z = F.leaky_relu(z, slope)
            m = torch.segment_reduce(z, "max", lengths=cnt, unsafe=True)  # rows without edges: -inf
            p = torch.exp(z - m.index_select(0, dl))
            s = torch.zeros(n1 - n0, H, dtype=cdt, device=h.device).index_add_(0, dl, p)
            has = s > 0
            s_safe = torch.where(has, s, 1.0)
            p = p / s_safe.index_select(0, dl)
            msg = hf.index_select(0, src).to(cdt).view(-1, H, D)
            msg.mul_(p[..., None])
            outf[n0:n1].index_add_(0, dl, msg.view(-1, H * D))
            del msg
            lse[n0:n1] = torch.where(has, m + torch.log(s_safe), -NEG)
        out = out.to(h.dtype)
        ctx.save_for_backward(h, a_src, a_dst, ebias if ebias is not None else torch.empty(0), indptr, indices,
                              out, lse)
        ctx.has_ebias = ebias is not None
        ctx.slope = slope
        ctx.chunk_edges = chunk_edges
        return out

    @staticmethod
    def backward(ctx, dout):
        h, a_src, a_dst, ebias, indptr, indices, out, lse = ctx.saved_tensors
        ebias = ebias if ctx.has_ebias else None
        slope = ctx.slope
        N, H, D = h.shape
        cdt = lse.dtype
        dout = dout.to(cdt)
        delta = (dout * out.to(cdt)).sum(-1)  # [N, H]
        dh = torch.zeros(N, H, D, dtype=cdt, device=h.device)
        da_src = torch.zeros(N, H, dtype=cdt, device=h.device)
        da_dst = torch.zeros(N, H, dtype=cdt, device=h.device)
        deb = torch.zeros(indices.numel(), H, dtype=cdt, device=h.device) if ctx.has_ebias else None
        ip = indptr.tolist()
        deg = indptr[1:] - indptr[:-1]
        hf = h.reshape(N, H * D)
        dof = dout.reshape(N, H * D)
        dhf = dh.view(N, H * D)
        for n0, n1 in _chunks(ip, ctx.chunk_edges):
            e0, e1 = ip[n0], ip[n1]
            if e1 == e0:
                continue
            src = indices[e0:e1]
            dl = torch.repeat_interleave(torch.arange(n1 - n0, device=h.device), deg[n0:n1])
            z = _edge_logits(a_src, a_dst, ebias, src, dl, n0, n1, e0, e1, cdt)
            zl = F.leaky_relu(z, slope)
            p = torch.exp(zl - lse[n0:n1].index_select(0, dl))
            do_e = dof[n0:n1].index_select(0, dl).view(-1, H, D)  # [Ec, H, D] (one chunk)
            hs = hf.index_select(0, src).to(cdt).view(-1, H, D)
            dp = hs.mul_(do_e).sum(-1)
            del hs
            ds = p * (dp - delta[n0:n1].index_select(0, dl))
            dz = torch.where(z > 0, ds, ds * slope)
            da_dst[n0:n1].index_add_(0, dl, dz)
            da_src.index_add_(0, src, dz)
            if deb is not None:
                deb[e0:e1] = dz
            dhf.index_add_(0, src, do_e.mul_(p[..., None]).view(-1, H * D))
        return (dh.to(h.dtype), da_src.to(a_src.dtype), da_dst.to(a_dst.dtype),
                None if deb is None else deb.to(h.dtype), None, None, None, None)


def graph_attention(h, a_src, a_dst, indptr, indices, edge_attr=None, w_edge=None, negative_slope=0.2,
                    chunk_edges: int = GRAPH_CHUNK_EDGES):
    """GAT over CSR by destination (contract: reference.graph_attention).

    The per-edge bias ``edge_attr @ w_edge`` ([E, H], one number per edge and head) is the only
    all-edges tensor besides the inputs; messages ``[edges, H, D]`` exist one chunk at a time.
    """
    indptr = indptr.to(h.device, torch.int64)
    indices = indices.to(h.device, torch.int64)
    dtype = h.dtype
    if dtype in (torch.float16, torch.bfloat16):
        # half inputs: accumulate in float32 (a node sums up to thousands of messages), cast back at the end
        h, a_src, a_dst = h.float(), a_src.float(), a_dst.float()
        edge_attr = edge_attr.float() if edge_attr is not None else None
        w_edge = w_edge.float() if w_edge is not None else None
    ebias = None
    if edge_attr is not None:
        if w_edge is None:
            raise ValueError("graph_attention: edge_attr given without w_edge")
        ebias = edge_attr.to(h.dtype) @ w_edge.to(h.dtype)
    out = _GraphAttention.apply(h, a_src, a_dst, ebias, indptr, indices, float(negative_slope), int(chunk_edges))
    return out.to(dtype)
