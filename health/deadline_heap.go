package health

import "time"

// heapItem is an element of a deadlineHeap: it has a deadline and keeps its
// own index in the heap (-1 once popped or removed), for heap.Fix and
// heap.Remove.
type heapItem interface {
	heapDeadline() time.Time
	setHeapIndex(int)
}

// deadlineHeap is a min-heap (container/heap) of items by deadline,
// earliest first.
type deadlineHeap[T heapItem] []T

func (h deadlineHeap[T]) Len() int { return len(h) }
func (h deadlineHeap[T]) Less(i, j int) bool {
	return h[i].heapDeadline().Before(h[j].heapDeadline())
}
func (h deadlineHeap[T]) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].setHeapIndex(i)
	h[j].setHeapIndex(j)
}

func (h *deadlineHeap[T]) Push(x any) {
	it := x.(T)
	it.setHeapIndex(len(*h))
	*h = append(*h, it)
}

func (h *deadlineHeap[T]) Pop() any {
	old := *h
	it := old[len(old)-1]
	var zero T
	old[len(old)-1] = zero
	it.setHeapIndex(-1)
	*h = old[:len(old)-1]
	return it
}
