import { useCallback, useEffect, useRef, useState } from 'react';
import { useApi } from '@backstage/core-plugin-api';
import Box from '@mui/material/Box';
import Button from '@mui/material/Button';
import Typography from '@mui/material/Typography';
import { finopsAdminApiRef } from '../../api';
import { errorMessage } from '../../api/FinopsAdminClient';

/** What the page keeps of a long log (oldest lines dropped first): the download has it all. */
export const KEEP_CHARS = 400_000;
/** "At the bottom" allows for a fraction of a line of rounding. */
const BOTTOM_SLACK_PX = 8;

type TailState = 'connecting' | 'following' | 'paused' | 'ended' | 'error';

const MESSAGES: Record<Exclude<TailState, 'error'>, string> = {
  connecting: 'Connecting…',
  following: 'Following: new lines appear as the run writes them.',
  paused: 'Paused: lines are kept and shown on resume.',
  ended:
    'Stream ended: the run (or step) has ended. The download has the whole log.',
};

/** `text` cut to its last `KEEP_CHARS` characters, at a line start. */
export function keepEnd(text: string): string {
  if (text.length <= KEEP_CHARS) return text;
  const cut = text.indexOf('\n', text.length - KEEP_CHARS);
  return cut < 0 ? text.slice(-KEEP_CHARS) : text.slice(cut + 1);
}

/**
 * The live tail of a run's logs (`GET /runs/{runId}/logs?follow=true`): lines appear as the run
 * writes them. It follows the bottom until the user scrolls up (and again once back at the
 * bottom), can be paused (lines received meanwhile appear on resume), and says when the stream
 * has ended. Unmounting closes the stream, which stops the API's work for it.
 */
export function LogTail(props: { runId: string; step?: string }) {
  const { runId, step } = props;
  const api = useApi(finopsAdminApiRef);
  const [text, setText] = useState('');
  const [state, setState] = useState<TailState>('connecting');
  const [error, setError] = useState<string>();
  const paused = useRef(false);
  const pending = useRef('');
  const stick = useRef(true);
  const box = useRef<HTMLPreElement>(null);

  // Where the view is right before new text (not from scroll events, which arrive a frame
  // late): at the bottom it follows, scrolled up it stays where the user is reading.
  const append = useCallback((chunk: string) => {
    const node = box.current;
    stick.current =
      !node ||
      node.scrollTop + node.clientHeight >= node.scrollHeight - BOTTOM_SLACK_PX;
    setText(previous => keepEnd(previous + chunk));
  }, []);

  useEffect(() => {
    const controller = new AbortController();
    const show = (chunk: string) => {
      if (!chunk) return;
      if (paused.current) pending.current = keepEnd(pending.current + chunk);
      else append(chunk);
    };
    (async () => {
      const body = await api.followLogs(runId, {
        step,
        signal: controller.signal,
      });
      setState(paused.current ? 'paused' : 'following');
      const reader = body.getReader();
      const decoder = new TextDecoder();
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        show(decoder.decode(value, { stream: true }));
      }
      show(decoder.decode());
      if (controller.signal.aborted) return;
      paused.current = false;
      const held = pending.current;
      pending.current = '';
      append(held);
      setState('ended');
    })().catch((reason: unknown) => {
      if (controller.signal.aborted) return;
      setError(errorMessage(reason));
      setState('error');
    });
    return () => controller.abort();
  }, [api, runId, step, append]);

  // After each new text: to the bottom, unless the user had scrolled up to read.
  useEffect(() => {
    const node = box.current;
    if (node && stick.current) node.scrollTop = node.scrollHeight;
  }, [text]);

  const togglePause = () => {
    paused.current = !paused.current;
    if (!paused.current && pending.current) {
      const held = pending.current;
      pending.current = '';
      append(held);
    }
    setState(paused.current ? 'paused' : 'following');
  };

  const live = state === 'following' || state === 'paused';
  return (
    <Box data-testid="log-tail" data-state={state} mt={2}>
      <Box display="flex" alignItems="center" gap={2} flexWrap="wrap">
        <Typography variant="subtitle2">Live log</Typography>
        <Typography
          variant="body2"
          role="status"
          color={state === 'error' ? 'error' : 'text.secondary'}
        >
          {state === 'error' ? `Stream stopped: ${error}` : MESSAGES[state]}
        </Typography>
        {live && (
          <Button
            size="small"
            variant="outlined"
            aria-pressed={state === 'paused'}
            onClick={togglePause}
          >
            {state === 'paused' ? 'Resume' : 'Pause'}
          </Button>
        )}
      </Box>
      <Box
        component="pre"
        ref={box}
        tabIndex={0}
        aria-label="Live log"
        sx={{
          height: 320,
          overflow: 'auto',
          whiteSpace: 'pre-wrap',
          overflowWrap: 'anywhere',
          bgcolor: '#111827',
          color: '#e5e7eb',
          p: 1,
          m: 0,
          mt: 1,
          borderRadius: 1,
          fontSize: 12,
        }}
      >
        {text}
      </Box>
    </Box>
  );
}
