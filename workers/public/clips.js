// The reel's clips, in order: pick one to edit it, drag its grip (or use its arrows) to reorder.
// Events: 'select' {index}, 'reorder' {from, to}, 'remove' {index}.

import { EFFECTS } from './project.js';
import { formatTime } from './timeline.js';

function button(className, text, label) {
  const b = document.createElement('button');
  b.type = 'button';
  b.className = className;
  b.textContent = text;
  if (label) b.setAttribute('aria-label', label);
  return b;
}

export class ClipList extends EventTarget {
  constructor(list) {
    super();
    this.list = list;
  }

  emit(type, detail) { this.dispatchEvent(new CustomEvent(type, { detail })); }

  /** clips: the project's; names: key -> video name; durationOf: key -> seconds or undefined. */
  render(clips, selected, nameOf, durationOf) {
    this.list.replaceChildren(...clips.map((clip, i) => {
      const n = i + 1;
      const end = clip.end_s ?? durationOf(clip.key);
      const li = document.createElement('li');
      li.className = `clip${i === selected ? ' selected' : ''}`;
      li.dataset.index = i;
      const grip = button('grip', '⠿', `Reorder clip ${n} by dragging`);
      this.draggable(grip, li);
      const pick = button('pick', '');
      pick.setAttribute('aria-pressed', String(i === selected));
      const title = clip.title.trim() || `Clip ${n}`;
      const range = `${formatTime(clip.start_s)}–${end == null ? 'end' : formatTime(end)}`;
      const length = end == null ? '' : ` (${(end - clip.start_s).toFixed(1)} s)`;
      pick.innerHTML = '<strong></strong><span></span>';
      pick.firstChild.textContent = `${n}. ${title}`;
      pick.lastChild.textContent = ` ${range}${length} · ${EFFECTS[clip.effect]} · ${nameOf(clip.key)}`;
      pick.addEventListener('click', () => this.emit('select', { index: i }));
      const up = button('up', '↑', `Move clip ${n} up`);
      const down = button('down', '↓', `Move clip ${n} down`);
      up.disabled = i === 0;
      down.disabled = i === clips.length - 1;
      up.addEventListener('click', () => this.emit('reorder', { from: i, to: i - 1 }));
      down.addEventListener('click', () => this.emit('reorder', { from: i, to: i + 1 }));
      const remove = button('remove', '✕', `Remove clip ${n}`);
      remove.addEventListener('click', () => this.emit('remove', { index: i }));
      li.append(grip, pick, up, down, remove);
      return li;
    }));
  }

  // Drag by the grip, mouse or touch: the item follows the pointer through the list; on release, 'reorder'.
  // Moving the item in the DOM ends pointer capture, so the drag listens on the document.
  draggable(grip, li) {
    grip.addEventListener('pointerdown', (e) => {
      e.preventDefault();
      const from = Number(li.dataset.index);
      li.classList.add('dragging');
      const move = (m) => {
        const others = [...this.list.children].filter((x) => x !== li);
        const before = others.find((x) => { const b = x.getBoundingClientRect(); return m.clientY < b.top + b.height / 2; });
        if (li.nextElementSibling !== (before || null)) this.list.insertBefore(li, before || null);
      };
      const up = () => {
        document.removeEventListener('pointermove', move);
        document.removeEventListener('pointerup', up);
        document.removeEventListener('pointercancel', up);
        li.classList.remove('dragging');
        this.emit('reorder', { from, to: [...this.list.children].indexOf(li) });
      };
      document.addEventListener('pointermove', move);
      document.addEventListener('pointerup', up);
      document.addEventListener('pointercancel', up);
    });
  }
}
